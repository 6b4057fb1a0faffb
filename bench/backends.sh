#!/usr/bin/env bash
# The same HTTP workloads against tagd on SQLite, on PostgreSQL with one replica and on
# PostgreSQL with three replicas (the load split evenly over them), in one run, with each
# PostgreSQL figure as a ratio to SQLite's. Loopback only; about 2 minutes per round.
#
#   bench/backends.sh              # one round
#   ROUNDS=3 bench/backends.sh     # medians of three rounds
#
# Needs wrk, psql and a PostgreSQL server tagd may create a database on:
# BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
#
# Workloads (32 connections, DURATION seconds each, default 8):
#   tms-create  TMS batch-create, one tag on one of 1000 disks (W1-like, durable writes)
#   rds-action  RDS tags/action create, one tag on one of 1000 instances (W2)
#   get-tags    GET one instance's tags through RDS (W3)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh
for tool in wrk psql curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/backends.sh needs $tool (Debian: apt-get install wrk postgresql-client curl)" >&2; exit 1; }
done
cargo build --release --quiet
rounds=${ROUNDS:-1}
duration=${DURATION:-8}
admin_url=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d); echo "work dir: $work" >&2
pids=()
database=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$database" ]; then psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true; fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

base_port=${PORT:-18300}

# start_tagd NAME REPLICAS [DATABASE_URL]: starts the replicas on consecutive ports.
start_tagd() {
  local name=$1 replicas=$2 url=${3:-}
  ports=()
  for i in $(seq 0 $((replicas - 1))); do
    local port=$((base_port + i)) dir="$work/$name-$i"
    mkdir -p "$dir"
    local args=(serve --data-dir "$dir" --listen "127.0.0.1:$port")
    [ -n "$url" ] && args+=(--database-url "$url")
    TAGD_SERVER_KEY=$key ./target/release/tagd "${args[@]}" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done
    ports+=("$port")
  done
  local creds="$work/$name-0/credentials"
  PROJECT=$(credential "$creds" project_id)
  TOKEN=$(admin_token "${ports[0]}" "$creds")
  export PROJECT TOKEN
  python3 - "$PROJECT" > "$work/resources.csv" <<'PY'
import sys
print("project_id,resource_type,resource_id,name")
for i in range(1000):
    print(f"{sys.argv[1]},disk,disk-{i},")
    print(f"{sys.argv[1]},rds,rds-{i},")
PY
  curl -s "http://127.0.0.1:${ports[0]}/tagd/v1/resources" -H "X-Auth-Token: $TOKEN" \
    -H 'Content-Type: text/csv' --data-binary @"$work/resources.csv" >/dev/null
}

stop_tagd() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# run_workload NAME: prints "req/s p99_ms" with the 32 connections split over the replicas.
run_workload() {
  local workload=$1 n=${#ports[@]} outs=()
  local script=bench/$workload.lua
  [ "$workload" = get-tags ] && script=bench/get.lua
  export TARGET="/v3/$PROJECT/instances/rds-7/tags"
  for i in $(seq 0 $((n - 1))); do
    local c=$(( 32 / n + (i < 32 % n ? 1 : 0) ))
    wrk -t1 -c"$c" -d"${duration}s" --latency -s "$script" "http://127.0.0.1:${ports[$i]}" > "$work/wrk-$i.txt" 2>&1 &
    outs+=($!)
  done
  wait "${outs[@]}"
  python3 - "$work" "$n" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
rps, p99, bad = 0.0, 0.0, 0
for i in range(n):
    text = open(f"{work}/wrk-{i}.txt").read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    p99 = max(p99, v)
    bad += text.count("unexpected status")
print(f"{rps:.0f} {p99:.2f} {bad}")
PY
}

workloads=(tms-create rds-action get-tags)
configs=(sqlite pg1 pg3)
declare -A results
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do
    case $config in
      sqlite) start_tagd "sqlite-$round" 1 ;;
      pg*)
        database="tagd_bench_$$_${round}_$config"
        psql "$admin_url" -qc "CREATE DATABASE $database" >/dev/null
        url="${admin_url%/*}/$database"
        start_tagd "$config-$round" "${config#pg}" "$url" ;;
    esac
    for w in "${workloads[@]}"; do
      results[$config,$w,$round]=$(run_workload "$w")
    done
    stop_tagd
    if [ "$config" != sqlite ]; then
      psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
      database=""
    fi
  done
done

python3 - "$rounds" "${workloads[*]}" "${configs[*]}" <<PY
import statistics, sys
rounds = int(sys.argv[1]); workloads = sys.argv[2].split(); configs = sys.argv[3].split()
raw = {}
$(for k in "${!results[@]}"; do echo "raw['$k'] = '${results[$k]}'"; done)
names = {"sqlite": "SQLite", "pg1": "PostgreSQL x1", "pg3": "PostgreSQL x3"}
print(f"{'workload':<12} {'store':<14} {'req/s median (min-max)':<26} {'p99 ms':>8} {'vs SQLite':>10} {'non-2xx':>8}")
for w in workloads:
    base = None
    for c in configs:
        runs = [tuple(map(float, raw[f"{c},{w},{r}"].split())) for r in range(1, rounds + 1)]
        rps = [r[0] for r in runs]
        med = statistics.median(rps)
        p99 = statistics.median([r[1] for r in runs])
        bad = int(sum(r[2] for r in runs))
        if c == "sqlite":
            base = med
        ratio = med / base if base else float("nan")
        print(f"{w:<12} {names[c]:<14} {med:>8.0f} ({min(rps):.0f}-{max(rps):.0f}){'':<8} {p99:>8.2f} {ratio:>9.2f}x {bad:>8}")
PY
