#!/usr/bin/env bash
# Soak test (issue 8, point 8): a steady mixed load against one tagd for SOAK_SECS after
# WARMUP_SECS of warm-up, in back-to-back windows of WINDOW_SECS. tagd's resident memory
# is sampled every 5 s; each window's throughput and latency are recorded. Passes when,
# after warm-up, memory grows less than 10% (median RSS of the last minute against the
# first) and p99 does not drift (the median p99 of
# the last three windows is under 1.5x that of the first three), with no failed request.
# Loopback only; bounded by SOAK_SECS + WARMUP_SECS.
#
#   bench/soak.sh                              # 1 min warm-up, 10 min soak
#   SOAK_SECS=60 WARMUP_SECS=10 WINDOW_SECS=10 bench/soak.sh   # a short run
#
# The mix is the load client's `soak` workload (examples/load.rs): RDS single-tag creates
# and deletes on 1,000 instances, TMS batch-create and batch-delete on 2,000 disks, reads
# of an instance's tags and a TMS filter, all over a fixed set of keys and values, so
# the data set stops growing once warm and a rising memory curve would be a leak.
#
# Environment: SOAK_SECS (600), WARMUP_SECS (60), WINDOW_SECS (30), CONCURRENCY (16),
# PORT (18430), PROFILE (release), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh

soak_secs=${SOAK_SECS:-600}
warmup_secs=${WARMUP_SECS:-60}
window_secs=${WINDOW_SECS:-30}
concurrency=${CONCURRENCY:-16}
port=${PORT:-18430}
profile=${PROFILE:-release}

if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
  echo "bench/soak.sh: port $port is in use; set PORT" >&2; exit 1
fi
echo "== building ($profile)" >&2
if [ "$profile" = release ]; then
  cargo build --release --quiet --bin tagd --example load; bin=target/release
else
  cargo build --quiet --bin tagd --example load; bin=target/debug
fi

work=$(mktemp -d /tmp/tagd-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

"$bin/tagd" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --auto-register \
  > "$work/tagd.out" 2> "$work/tagd.log" &
tagd_pid=$!
pids+=("$tagd_pid")
for _ in $(seq 1 500); do
  [ -f "$work/data/credentials" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
  sleep 0.02
done
project=$(credential "$work/data/credentials" project_id)
token=$(admin_token "$port" "$work/data/credentials")
[ -n "$token" ] || { echo "no token from tagd" >&2; exit 1; }
register_rds "$port" "$token" "$project" "$work/rds.csv"

# Resident memory of tagd every 5 s: elapsed seconds, KiB.
started=$(date +%s)
(
  while kill -0 "$tagd_pid" 2>/dev/null; do
    echo "$(( $(date +%s) - started )) $(ps -o rss= -p "$tagd_pid" | tr -d ' ')"
    sleep 5
  done
) > "$work/rss.txt" &
pids+=("$!")

total=$(( warmup_secs + soak_secs ))
echo "== soak: ${warmup_secs} s warm-up, then ${soak_secs} s in windows of ${window_secs} s, $concurrency clients" >&2
: > "$work/windows.jsonl"
while [ $(( $(date +%s) - started )) -lt "$total" ]; do
  left=$(( total - ($(date +%s) - started) ))
  secs=$(( left < window_secs ? left : window_secs ))
  line=$("$bin/examples/load" --url "http://127.0.0.1:$port" --workload soak \
    --concurrency "$concurrency" --duration "$secs" --token "$token" --project "$project" \
    --instances 1000 --resources 2000 2>> "$work/load.err") || true
  [ -n "$line" ] || { echo "the load client printed nothing:" >&2; tail -5 "$work/load.err" >&2; exit 1; }
  echo "{\"end_s\": $(( $(date +%s) - started )), \"line\": $line}" >> "$work/windows.jsonl"
  kill -0 "$tagd_pid" 2>/dev/null || { echo "tagd died:" >&2; tail -20 "$work/tagd.log" >&2; exit 1; }
done
sleep 1
db_kb=$(du -sk "$work/data" | cut -f1)

python3 - "$work/windows.jsonl" "$work/rss.txt" "$warmup_secs" "$db_kb" <<'PY'
import json, statistics, sys
windows = [json.loads(l) for l in open(sys.argv[1])]
rss = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
warmup, db_kb = int(sys.argv[3]), int(sys.argv[4])

def rss_at(t):
    return min(rss, key=lambda s: abs(s[0] - t))[1]

print("| window end (s) | requests/s | p50 ms | p99 ms | errors | tagd RSS (MiB) |")
print("|---:|---:|---:|---:|---:|---:|")
for w in windows:
    l = w["line"]
    mark = " (warm-up)" if w["end_s"] <= warmup else ""
    print(f"| {w['end_s']}{mark} | {l['rps']:,.0f} | {l['p50_ms']} | {l['p99_ms']} | "
          f"{l['errors']} | {rss_at(w['end_s']) / 1024:.1f} |")

soak = [w["line"] for w in windows if w["end_s"] > warmup]
after = [(t, kb) for t, kb in rss if t >= warmup]
if len(soak) < 2 or len(after) < 2:
    sys.exit("soak too short to judge: set SOAK_SECS to a few windows")
# Growth is judged on medians of the first and the last minute after warm-up (a fifth of
# the soak if shorter), so that one sample caught mid-burst does not decide it.
span = min(60, max(5, (after[-1][0] - after[0][0]) // 5))
base = statistics.median(kb for t, kb in after if t <= after[0][0] + span)
end = statistics.median(kb for t, kb in after if t >= after[-1][0] - span)
peak = max(kb for _, kb in after)
growth = end / base - 1
k = min(3, len(soak) // 2)
first = statistics.median(l["p99_ms"] for l in soak[:k])
last = statistics.median(l["p99_ms"] for l in soak[-k:])
drift = last / first if first else float("inf")
errors = sum(w["line"]["errors"] for w in windows)
requests = sum(w["line"]["requests"] for w in windows)
print()
print(f"requests: {requests:,} ({errors} failed); data directory at the end: {db_kb / 1024:.1f} MiB")
print(f"memory (median RSS) in the first {span} s after warm-up: {base / 1024:.1f} MiB; "
      f"in the last {span} s: {end / 1024:.1f} MiB; growth {growth:+.1%} (limit +10%); "
      f"peak {peak / 1024:.1f} MiB")
print(f"p99, median of the first {k} windows after warm-up: {first} ms; of the last {k}: "
      f"{last} ms; ratio {drift:.2f} (limit 1.5)")
ok = growth < 0.10 and drift < 1.5 and errors == 0
print("verdict:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
