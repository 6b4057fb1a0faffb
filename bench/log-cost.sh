#!/usr/bin/env bash
# What the access log costs (D75): tagd's CPU time per W3 request (GET of one instance's
# tags, 16 clients, 5 s) with the access line on and off, on the release build, in
# alternating rounds so machine noise falls on both. CPU time comes from /proc, which
# is steadier than throughput on a shared machine. Loopback only, about a minute.
#
#   bench/log-cost.sh            # ROUNDS=3, PORT=18701 (and PORT+1)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh
rounds=${ROUNDS:-3}
port=${PORT:-18701}
cargo build --release --quiet --bin tagd --example load
tick=$(getconf CLK_TCK)
measure() { # LOGSPEC PORT
  local dir; dir=$(mktemp -d /tmp/acc.XXXXXX)
  target/release/tagd serve --listen 127.0.0.1:$2 --data-dir $dir/data --log "$1" > /dev/null 2> $dir/log &
  local pid=$!
  for _ in $(seq 1 200); do [ -f $dir/data/credentials ] && curl -s -o /dev/null --max-time 1 http://127.0.0.1:$2/ && break; sleep 0.02; done
  local project token; project=$(credential $dir/data/credentials project_id); token=$(admin_token $2 $dir/data/credentials)
  register_rds $2 "$token" "$project" $dir/rds.csv
  # warm-up
  target/release/examples/load --url http://127.0.0.1:$2 --workload w3 --concurrency 16 --duration 1 --token "$token" --project "$project" > /dev/null
  local before; before=$(awk '{print $14+$15}' /proc/$pid/stat)
  local line; line=$(target/release/examples/load --url http://127.0.0.1:$2 --workload w3 --concurrency 16 --duration 5 --token "$token" --project "$project")
  local after; after=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null || true
  python3 -c "
import json,sys
l=json.loads(sys.argv[1]); ticks=int(sys.argv[2])-int(sys.argv[3])
print(f'{sys.argv[4]:28s} rps {l[\"rps\"]:9,.0f}  cpu/request {ticks/int(sys.argv[5])/l[\"requests\"]*1e6:6.2f} us')
" "$line" "$after" "$before" "$1" "$tick"
  rm -rf $dir
}
for _ in $(seq 1 "$rounds"); do
  measure "info" "$port"
  measure "info,tagd::access=warn" "$((port + 1))"
done
