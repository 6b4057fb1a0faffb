#!/usr/bin/env bash
# A/B of two commits on the write and read workloads, in one run: builds each commit's
# release binary (in its own worktree under target/ab), then alternates them round by
# round on fresh data directories, so both meet the same machine noise. Loopback only.
#
#   bench/ab.sh BASE [HEAD]          # HEAD defaults to the working tree's HEAD
#   ROUNDS=3 DURATION=10 WORKLOADS=w1,w2,w3 bench/ab.sh b20591b
#
# Prints one line per measurement and, at the end, the median of each side and the
# ratio HEAD/BASE per workload.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh
base_rev=${1:?usage: bench/ab.sh BASE [HEAD]}
head_rev=${2:-HEAD}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
workloads=${WORKLOADS:-w1,w2,w3}
port=${PORT:-18290}
root=$(pwd)
ab=$root/target/ab
mkdir -p "$ab"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# build NAME REV: a release tagd of REV at $ab/NAME/tagd (worktree kept for the next run).
build() {
  local name=$1 rev=$2 tree=$ab/$1/src
  if [ ! -d "$tree" ]; then git worktree add -q --detach "$tree" "$rev"; fi
  git -C "$tree" checkout -q --detach "$rev"
  CARGO_TARGET_DIR=$ab/$name/target cargo build --release --quiet --manifest-path "$tree/Cargo.toml" --bin tagd
  cp "$ab/$name/target/release/tagd" "$ab/$name/tagd"
}
echo "== building $base_rev and $head_rev" >&2
build base "$(git rev-parse "$base_rev")"
build head "$(git rev-parse "$head_rev")"
cargo build --release --quiet --example load
load=$root/target/release/examples/load

results=$work/results.txt
for round in $(seq "$rounds"); do
  for side in base head; do
    for w in ${workloads//,/ }; do
      dir=$(mktemp -d "$work/tagd.XXXXXX")
      args=()
      # W1 writes to fresh disks, registered on first write (as in bench/suite.sh).
      [ "$w" = w1 ] && args=(--auto-register)
      "$ab/$side/tagd" serve --data-dir "$dir" --listen "127.0.0.1:$port" "${args[@]}" >/dev/null 2>&1 &
      pid=$!; pids+=("$pid")
      for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
      PROJECT=$(credential "$dir/credentials" project_id)
      TOKEN=$(admin_token "$port" "$dir/credentials")
      case $w in
        w1) c=16 ;;
        *) c=32; register_rds "$port" "$TOKEN" "$PROJECT" "$dir.csv" >/dev/null ;;
      esac
      line=$("$load" --url "http://127.0.0.1:$port" --workload "$w" --concurrency "$c" \
        --duration "$duration" --system "$side" --token "$TOKEN" --project "$PROJECT")
      units=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["units_per_s"]))' "$line")
      echo "round $round $side $w $units" | tee -a "$results" >&2
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for w in sorted({r[3] for r in rows}):
    med = {s: statistics.median(float(r[4]) for r in rows if r[2] == s and r[3] == w) for s in ("base", "head")}
    print(f"{w}: base {med['base']:,.0f}/s, head {med['head']:,.0f}/s, head/base {med['head']/med['base']:.3f}")
PY
