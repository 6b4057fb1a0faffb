#!/usr/bin/env bash
# The benchmark suite of issue 7: every workload against a freshly started tagd and, in
# the same run, its baselines (the HTTP ceiling, plain SQLite on tagd's schema, moto),
# ROUNDS times; prints a markdown table of medians (min-max), the ratio to each baseline
# and each issue-7 target marked met or not met from the measured numbers. Loopback only,
# every measurement bounded in time.
#
#   bench/suite.sh                 # ROUNDS=3, DURATION=10: about 13 minutes
#   SMOKE=1 bench/suite.sh         # tiny sizes, one round, 1 s each, no moto (CI)
#   W4=1 bench/suite.sh            # also W4 at 1,000,000 resources (loads ~2 min once)
#
# Environment:
#   ROUNDS        rounds of every measurement (default 3; SMOKE: 1)
#   DURATION      seconds per measurement (default 10; SMOKE: 1)
#   OUT           where the raw numbers go as JSON (default /tmp/tagd-bench.json)
#   SMOKE=1       tiny sizes, skips moto; checks the suite works, not the figures
#   PROFILE       release (default) or debug (what SMOKE uses under .ci/bench-smoke)
#   MOTO=0        skip moto; MOTO_VENV names its virtualenv (default
#                 /tmp/tagd-bench-moto-venv, created with pip install 'moto[server]' boto3)
#   W4=1          include W4; W4_DIR (default /tmp/tagd-bench-w4) keeps the generated
#                 data between runs, W4_RESOURCES its size (default 1000000)
#   W5_RESOURCES  resources of the W5 query data (default 5000; SMOKE: 500)
#   CLIENT_THREADS  runtime threads of the load client (default 1, as wrk -t1)
#   PORT          first of three loopback ports used (default 18420)
#   KEEP=1        keep the work directory (logs, raw lines)
#   ONLY=W2,W3    run only these of W1, W2, W3, W5 (default all; W4 is chosen by W4=1)
#
# Workloads (issue 7): W1 TMS batch-create, 50 fresh disks x 10 tags, 16 clients (tagd
# with --auto-register, so each disk is registered by its first tag, as moto does);
# W2 RDS tags/action single-tag create, 32 clients; W3 GET one instance's tags, 32
# clients; W5 moto's M1 (20 fresh disks x 10 tags per call, one client) and M2 (env=prod
# AND team=t3 over W5_RESOURCES disks, every match, paged by 100); W4 as bench/queries.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh

smoke=${SMOKE:-0}
if [ "$smoke" = 1 ]; then
  rounds=${ROUNDS:-1}; duration=${DURATION:-1}; w5_resources=${W5_RESOURCES:-500}; moto=0
else
  rounds=${ROUNDS:-3}; duration=${DURATION:-10}; w5_resources=${W5_RESOURCES:-5000}; moto=${MOTO:-1}
fi
out=${OUT:-/tmp/tagd-bench.json}
profile=${PROFILE:-release}
w4=${W4:-0}
only=${ONLY:-W1,W2,W3,W5}
# wanted NAME: whether workload NAME is among ONLY.
wanted() { [[ ",$only," == *",$1,"* ]]; }
w4_dir=${W4_DIR:-/tmp/tagd-bench-w4}
w4_resources=${W4_RESOURCES:-1000000}
client_threads=${CLIENT_THREADS:-1}
moto_venv=${MOTO_VENV:-/tmp/tagd-bench-moto-venv}
port=${PORT:-18420}
tagd_port=$port ceiling_port=$((port + 1)) moto_port=$((port + 2))

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/suite.sh needs $tool" >&2; exit 1; }
done
for p in "$tagd_port" "$ceiling_port" "$moto_port"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
    echo "bench/suite.sh: port $p is in use; set PORT to a free range" >&2; exit 1
  fi
done

echo "== building ($profile)" >&2
if [ "$profile" = release ]; then
  cargo build --release --quiet --bins --examples
  bin=target/release
else
  cargo build --quiet --bins --examples
  bin=target/debug
fi
tagd=$bin/tagd load=$bin/examples/load

work=$(mktemp -d /tmp/tagd-bench-suite.XXXXXX)
results=$work/results.jsonl
errlog=$work/errors.log
: > "$results"; : > "$errlog"
pids=()
failures=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# stop PID: ends one process this script started.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# wait_http URL SECONDS: until URL answers at all.
wait_http() {
  local deadline=$(( $(date +%s) + $2 ))
  until curl -s -o /dev/null --max-time 1 "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# record ROUND EXTRA_JSON LINE [NAME]: one result line, with the round and extra fields;
# with NAME, a one-line summary on stderr.
record() {
  python3 - "$@" >> "$results" <<'PY'
import json, sys
d = json.loads(sys.argv[3]); d["round"] = int(sys.argv[1]); d.update(json.loads(sys.argv[2]))
print(json.dumps(d))
if len(sys.argv) > 4:
    print(f"   round {d['round']}  {sys.argv[4]}: {d.get('units_per_s', 0):,.0f} units/s, "
          f"{d.get('rps', 0):,.1f} req/s, p50 {d.get('p50_ms', 0)} ms, p99 {d.get('p99_ms', 0)} ms, "
          f"errors {d.get('errors', 0)}", file=sys.stderr)
PY
}

# measure ROUND NAME COMMAND...: runs one measurement, records its JSON line; a failed
# measurement is recorded if it printed one, and named at the end.
measure() {
  local round=$1 name=$2; shift 2
  local line status=0
  line=$("$@" 2>>"$errlog") || status=$?
  if [ -n "$line" ]; then
    record "$round" "{\"failed\": $([ $status = 0 ] && echo false || echo true)}" "$line" "$name"
  else
    echo "   round $round  $name: no result" >&2
  fi
  if [ "$status" != 0 ]; then failures+=("round $round $name (exit $status)"); fi
  return 0
}

tagd_pid="" TOKEN="" PROJECT="" tagd_log="" ready_s=""
# start_tagd DIR [ARGS...]: a tagd on DIR; sets tagd_pid, tagd_log, TOKEN, PROJECT, ready_s.
start_tagd() {
  local tagd_dir=$1; shift
  tagd_log=$(mktemp "$work/tagd-log.XXXXXX")
  local t0; t0=$(date +%s.%N)
  "$tagd" serve --data-dir "$tagd_dir" --listen "127.0.0.1:$tagd_port" "$@" >/dev/null 2>"$tagd_log" &
  tagd_pid=$!; pids+=("$tagd_pid")
  wait_http "http://127.0.0.1:$tagd_port/" 60 || { echo "tagd did not start:" >&2; cat "$tagd_log" >&2; exit 1; }
  ready_s=$(python3 -c "import sys; print(round($(date +%s.%N) - $t0, 3))")
  local pw
  PROJECT=$(credential "$tagd_dir/credentials" project_id)
  TOKEN=$(admin_token "$tagd_port" "$tagd_dir/credentials")
  [ -n "$TOKEN" ] || { echo "no token from tagd" >&2; exit 1; }
}

# A fresh tagd for one measurement; REGISTER=1 registers rds-0..999 (W2, W3).
fresh_tagd() {
  local dir; dir=$(mktemp -d "$work/tagd.XXXXXX")
  start_tagd "$dir" "$@"
  if [ "${REGISTER:-0}" = 1 ]; then
    register_rds "$tagd_port" "$TOKEN" "$PROJECT" "$dir.csv" || exit 1
  fi
}

rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }

drive() { # SYSTEM URL WORKLOAD CONCURRENCY [EXTRA...]: the load client
  local system=$1 url=$2 workload=$3 c=$4; shift 4
  "$load" --url "$url" --workload "$workload" --concurrency "$c" --duration "$duration" \
    --threads "$client_threads" --system "$system" --token "$TOKEN" --project "$PROJECT" "$@"
}

# The tagd measurements append the process's resident memory afterwards.
measure_tagd() { # ROUND NAME WORKLOAD CONCURRENCY [EXTRA...]
  local round=$1 name=$2; shift 2
  measure "$round" "$name" drive tagd "http://127.0.0.1:$tagd_port" "$@"
  local last; last=$(tail -n1 "$results")
  if [ -n "$last" ]; then
    python3 - "$results" "$(rss_kb "$tagd_pid")" <<'PY'
import json, sys
path, rss = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
d = json.loads(lines[-1]); d["rss_kb"] = int(rss or 0); lines[-1] = json.dumps(d)
open(path, "w").write("\n".join(lines) + "\n")
PY
  fi
}

# ---- moto: a virtualenv, or a reason it is missing
moto_reason=""
if [ "$moto" != 1 ]; then
  moto_reason=$([ "$smoke" = 1 ] && echo "skipped (SMOKE=1)" || echo "skipped (MOTO=0)")
elif [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "== installing moto[server] and boto3 into $moto_venv" >&2
  if ! { python3 -m venv "$moto_venv" && timeout 600 "$moto_venv/bin/pip" install -q 'moto[server]' boto3; } >"$work/pip.log" 2>&1; then
    moto_reason="not available (pip: $(tail -n1 "$work/pip.log" | tr -d '"\\' | cut -c1-160))"
  fi
fi
if [ -z "$moto_reason" ]; then
  moto_version=$("$moto_venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null) \
    || moto_reason="not available (moto does not import in $moto_venv)"
fi
if [ -n "$moto_reason" ]; then echo "moto: $moto_reason" >&2; else echo "moto: $moto_version ($moto_venv)" >&2; fi

moto_pid=""
start_moto() {
  "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
  moto_pid=$!; pids+=("$moto_pid")
  wait_http "http://127.0.0.1:$moto_port/moto-api/" 60
}
peer() { "$moto_venv/bin/python" bench/moto_peer.py "$@" --url "http://127.0.0.1:$moto_port"; }

# ---- the HTTP ceiling: one server for the whole run (it keeps no state)
"$bin/examples/http_ceiling" "127.0.0.1:$ceiling_port" 2>>"$errlog" &
ceiling_pid=$!; pids+=("$ceiling_pid")
wait_http "http://127.0.0.1:$ceiling_port/" 30 || { echo "http_ceiling did not start" >&2; exit 1; }
ceiling=http://127.0.0.1:$ceiling_port
sqlite_dir=$work/sqlite; mkdir -p "$sqlite_dir"
sqlite() { "$bin/examples/sqlite_ceiling" --dir "$sqlite_dir" --duration "$duration" "$@"; }

echo "== $rounds round(s), $duration s per measurement" >&2
for round in $(seq "$rounds"); do
  echo "== round $round" >&2
  if wanted W1; then
  fresh_tagd --auto-register
  measure_tagd "$round" "W1 tagd" w1 16 --run-id "w1r$round"
  stop "$tagd_pid"
  measure "$round" "W1 HTTP ceiling" drive http-ceiling "$ceiling" w1 16
  measure "$round" "W1 SQLite, 1 writer" sqlite --mode w1 --threads 1 --system sqlite-t1
  measure "$round" "W1 SQLite, 16 writers" sqlite --mode w1 --threads 16 --system sqlite-t16
  measure "$round" "W1 SQLite, 16 batches per commit" sqlite --mode w1 --group 16 --system sqlite-group16
  measure "$round" "W1 SQLite, 16 batches per commit, no query index" \
    sqlite --mode w1 --group 16 --no-query-index --system sqlite-group16-noidx
  fi
  if wanted W2; then
  REGISTER=1 fresh_tagd
  measure_tagd "$round" "W2 tagd" w2 32
  stop "$tagd_pid"
  measure "$round" "W2 HTTP ceiling" drive http-ceiling "$ceiling" w2 32
  measure "$round" "W2 SQLite, 1 writer" sqlite --mode w2 --threads 1 --system sqlite-t1
  measure "$round" "W2 SQLite, 32 writers" sqlite --mode w2 --threads 32 --system sqlite-t32
  measure "$round" "W2 SQLite, 32 writes per commit" sqlite --mode w2 --group 32 --system sqlite-group32
  fi
  if wanted W3; then
  REGISTER=1 fresh_tagd
  measure_tagd "$round" "W3 tagd" w3 32
  stop "$tagd_pid"
  measure "$round" "W3 HTTP ceiling" drive http-ceiling "$ceiling" w3 32
  fi
  # W5: the query data first (moto's M2 is over these resources only), then M1 writes.
  if wanted W5; then
  fresh_tagd --auto-register
  measure "$round" "W5 tagd load" "$load" --url "http://127.0.0.1:$tagd_port" --workload w5-load \
    --resources "$w5_resources" --system tagd --token "$TOKEN" --project "$PROJECT"
  measure_tagd "$round" "W5 tagd query (M2)" w5-query 1 --resources "$w5_resources"
  measure_tagd "$round" "W5 tagd writes (M1)" w5-write 1 --run-id "w5r$round"
  stop "$tagd_pid"
  measure "$round" "W5 SQLite query" sqlite --mode m2 --resources "$w5_resources" --system sqlite
  if [ -z "$moto_reason" ]; then
    # A fresh moto per round, as for tagd.
    if start_moto; then
      measure "$round" "moto load" peer load --resources "$w5_resources"
      measure "$round" "moto M2 query" peer m2 --resources "$w5_resources" --duration "$duration"
      measure "$round" "moto M1 writes, 1 client" peer m1 --clients 1 --duration "$duration" --run-id "a$round"
      measure "$round" "moto M1 writes, 16 clients" peer m1 --clients 16 --duration "$duration" --run-id "b$round"
    else
      failures+=("round $round: moto_server did not start")
    fi
    stop "$moto_pid"
  fi
  fi
done

# ---- W4: 1,000,000 resources (bench/queries.sh's data), opt-in
if [ "$w4" = 1 ]; then
  echo "== W4 data in $w4_dir ($w4_resources resources)" >&2
  if [ ! -f "$w4_dir/tagd.db" ]; then
    mkdir -p "$w4_dir"
    start_tagd "$w4_dir"; stop "$tagd_pid"
    "$tagd" admin --data-dir "$w4_dir" generate --project cn-north-4 --resources "$w4_resources" >&2
    "$tagd" admin --data-dir "$w4_dir" generate --project cn-north-4 --type dis --resources $((w4_resources / 10)) --seed 7 >&2
  fi
  for round in $(seq "$rounds"); do
    echo "== W4 round $round" >&2
    # The tag index is built from the start (D61); timed from the process's start, not
    # from the token (whose write may wait for the build).
    t0=$(date +%s.%N)
    start_tagd "$w4_dir"
    for _ in $(seq 1200); do grep -q "built the tag index" "$tagd_log" && break; sleep 0.1; done
    index_s=$(python3 -c "print(round($(date +%s.%N) - $t0, 3))")
    rss_index=$(rss_kb "$tagd_pid")
    record "$round" '{}' "{\"system\":\"tagd\",\"workload\":\"w4-startup\",\"ready_s\":$ready_s,\"index_s\":$index_s,\"rss_kb\":$rss_index,\"errors\":0}"
    echo "   round $round  W4 startup: ready in $ready_s s, tag index after $index_s s, resident $((rss_index / 1024)) MB" >&2
    measure_tagd "$round" "W4 two-key filter + count, 1 client" w4-filter 1
    measure_tagd "$round" "W4 two-key filter + count, 4 clients" w4-filter 4
    measure_tagd "$round" "W4 DIS count, 4 clients" w4-count 4
    measure_tagd "$round" "W4 without_any_tag, 4 clients" w4-untagged 4
    measure_tagd "$round" "W4 tag-keys page, 4 clients" w4-keys 4
    measure_tagd "$round" "W4 tag-values page, 4 clients" w4-values 4
    measure_tagd "$round" "W4 one resource's tags, 4 clients" w4-get 4 --resources "$w4_resources"
    stop "$tagd_pid"
  done
fi

python3 bench/suite_report.py "$results" "$out" \
  "{\"rounds\":$rounds,\"duration_s\":$duration,\"smoke\":$([ "$smoke" = 1 ] && echo true || echo false),\"profile\":\"$profile\",\"client_threads\":$client_threads,\"w5_resources\":$w5_resources,\"w4\":$([ "$w4" = 1 ] && echo true || echo false),\"w4_resources\":$w4_resources,\"date\":\"$(date -u +%FT%TZ)\",\"moto\":\"${moto_reason:-$moto_version}\",\"cores\":$(nproc),\"host\":\"$(uname -sr)\"}"
if [ -n "$moto_reason" ]; then echo; echo "moto: $moto_reason"; fi
if [ ${#failures[@]} -gt 0 ]; then
  echo
  echo "FAILED measurements (errors are counted in the table; messages below):"
  printf '  %s\n' "${failures[@]}"
  sed 's/^/  | /' "$errlog" | head -40
  exit 1
fi
