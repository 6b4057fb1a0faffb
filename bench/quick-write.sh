#!/usr/bin/env bash
# Measures durable TMS writes against a fresh release build: one client (one fsync per
# request) versus 32 concurrent clients (group commit). Loopback only; ~25 s.
# Needs wrk (Debian package `wrk`).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh
cargo build --release --quiet
dir=$(mktemp -d)
port=${PORT:-18190}
./target/release/tagd serve --data-dir "$dir" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
export PROJECT=$(credential "$dir/credentials" project_id)
export TOKEN=$(admin_token "$port" "$dir/credentials")
python3 - "$dir" <<'PY' > "$dir/resources.csv"
import sys
pid = open(sys.argv[1] + "/credentials").read().split('project_id = "')[1].split('"')[0]
print("project_id,resource_type,resource_id,name")
for i in range(1000):
    print(f"{pid},disk,disk-{i},")
PY
./target/release/tagd admin --data-dir "$dir" resource import "$dir/resources.csv" >/dev/null
for c in 1 32; do
  echo "== $c connection(s), 10 s"
  wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d 10s --latency -s bench/tms-create.lua "http://127.0.0.1:$port" \
    | grep -E 'Requests/sec|50%|99%|unexpected' || true
done
