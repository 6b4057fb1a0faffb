#!/usr/bin/env bash
# Query workloads at scale (issue 5, point 8): loads N resources x 5 tags with
# `tagd admin generate` (once per data directory), then measures over HTTP with wrk,
# 4 connections for 10 s each, and the same queries as raw SQL on the same database
# (the storage ceiling) with sqlite3. Then, unless PG=0, copies the same data to a fresh
# PostgreSQL database (`tagd admin copy-store`) and runs the same HTTP workloads against
# one tagd on it. Loopback only. Needs wrk, sqlite3 and psql (Debian).
#   bench/queries.sh [DATA_DIR] [RESOURCES]
#   BENCH_DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres).
#   PG_URL=postgres://.../db reuses a database already holding the copy (no copy, not dropped).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/credentials.sh
dir=${1:-/tmp/tagd-bench-queries}
n=${2:-1000000}
port=${PORT:-18191}
cargo build --release --quiet
bin=./target/release/tagd
if [ ! -f "$dir/tagd.db" ]; then
  $bin serve --data-dir "$dir" --listen "127.0.0.1:$port" >/dev/null 2>&1 & pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  kill $pid; wait $pid 2>/dev/null || true
  $bin admin --data-dir "$dir" generate --project cn-north-4 --resources "$n"
fi
# A tenth as many DIS streams, for the per-service count.
if ! sqlite3 "$dir/tagd.db" "SELECT 1 FROM resources WHERE resource_type='dis' LIMIT 1" | grep -q 1; then
  $bin admin --data-dir "$dir" generate --project cn-north-4 --type dis --resources $((n / 10)) --seed 7
fi
log=$(mktemp)
started=$(date +%s.%N)
$bin serve --data-dir "$dir" --listen "127.0.0.1:$port" >/dev/null 2>"$log" & pid=$!
pg_pid=""
pg_admin=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_db=tagd_bench_queries_$$
pg_dir=$(mktemp -d)
cleanup() {
  kill $pid $pg_pid 2>/dev/null || true
  rm -rf "$log" "$pg_dir"
  [ "${PG:-1}" = 0 ] || [ -n "${PG_URL:-}" ] || psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
project=$(credential "$dir/credentials" project_id)
export TOKEN=$(admin_token "$port" "$dir/credentials")
run() { # name, wrk script, target, [body], [connections]
  export TARGET=$3 BODY=${4:-}
  printf '%-28s ' "$1"
  wrk -t1 -c"${5:-4}" -d10s --timeout 30s --latency -s "bench/$2" "http://127.0.0.1:${target_port:-$port}" \
    | awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /unexpected/ {bad++} END {printf "%8s req/s  p50 %8s  p99 %8s  errors %d\n", rps, p50, p99, bad}'
}
ready=$(date +%s.%N)
echo "== startup to ready: $(echo "$ready - $started" | bc) s"
# The first query asks for the tag index; wait until it is built before measuring.
curl -s "http://127.0.0.1:$port/v1.0/tag-keys?limit=1" -H "X-Auth-Token: $TOKEN" >/dev/null
for _ in $(seq 600); do grep -q "built the tag index" "$log" && break; sleep 0.1; done
grep -o 'built the tag index.*' "$log" | head -1 | sed 's/^/== /'
echo "== tagd resident memory with the index: $(ps -o rss= -p $pid) KiB"
two_keys='{"project_id":"'$project'","resource_types":["disk"],"tags":[{"key":"env","values":["prod"]},{"key":"team","values":["t3"]}],"limit":100}'
untagged='{"project_id":"'$project'","resource_types":["disk"],"without_any_tag":true,"limit":100}'
http_workloads() {
  run "W4 two-key filter + count" post-json.lua /v1.0/resource-instances/filter "$two_keys"
  run "  same, one connection" post-json.lua /v1.0/resource-instances/filter "$two_keys" 1
  count_body='{"action":"count","tags":[{"key":"env","values":["prod"]},{"key":"team","values":["t3"]}]}'
  run "W4 DIS two-key count" post-json.lua "/v2/$project/stream/resource_instances/action" "$count_body"
  run "W4 without_any_tag" post-json.lua /v1.0/resource-instances/filter "$untagged"
  run "W4 tag-keys page" get.lua "/v1.0/tag-keys?limit=200"
  run "W4 tag-values page" get.lua "/v1.0/tag-values?key=owner&limit=200"
  run "one resource's tags" get.lua "/v2.0/resources/$(printf 'disk-%07d' $((n / 2)))/tags?project_id=$project&resource_type=disk"
}
echo "== over HTTP (tagd on SQLite, 4 connections unless said)"
http_workloads
echo "== raw SQL on the same database (sqlite3, one run each)"
sql() { printf '%-28s ' "$1"; /usr/bin/time -f '%e s' sqlite3 "$dir/tagd.db" "$2" 2>&1 >/dev/null | tail -1; }
sql "two-key exact count" "SELECT count(*) FROM resources r WHERE r.project_id='$project' AND EXISTS (SELECT 1 FROM tags t WHERE t.rid=r.rid AND t.key='env' AND t.value='prod') AND EXISTS (SELECT 1 FROM tags t WHERE t.rid=r.rid AND t.key='team' AND t.value='t3');"
sql "two-key count (intersect)" "SELECT count(*) FROM (SELECT rid FROM tags WHERE key='team' AND value='t3' INTERSECT SELECT rid FROM tags WHERE key='env' AND value='prod');"
sql "first 100 by (type,id)" "SELECT r.resource_id FROM resources r WHERE r.project_id='$project' AND EXISTS (SELECT 1 FROM tags t WHERE t.rid=r.rid AND t.key='env' AND t.value='prod') AND EXISTS (SELECT 1 FROM tags t WHERE t.rid=r.rid AND t.key='team' AND t.value='t3') ORDER BY r.resource_type, r.resource_id LIMIT 100;"
echo "== tagd resident memory after the run: $(ps -o rss= -p $pid) KiB"
if [ "${PG:-1}" != 0 ]; then
  if [ -n "${PG_URL:-}" ]; then
    pg_url=$PG_URL
  else
    psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
    pg_url="${pg_admin%/*}/$pg_db"
    copy_started=$(date +%s.%N)
    $bin admin copy-store --from "sqlite://$dir/tagd.db" --to "$pg_url" >/dev/null
    echo "== copied to PostgreSQL in $(echo "$(date +%s.%N) - $copy_started" | bc) s"
    # A fresh bulk load has no planner statistics and no visibility map yet.
    psql "$pg_url" -qc "VACUUM ANALYZE" >/dev/null
  fi
  target_port=$((port + 1))
  started=$(date +%s.%N)
  $bin serve --data-dir "$pg_dir" --listen "127.0.0.1:$target_port" --database-url "$pg_url" \
    --server-key-file "$dir/server.key" >/dev/null 2>&1 & pg_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$target_port/" >/dev/null && break; sleep 0.1; done
  echo "== PostgreSQL: startup to ready: $(echo "$(date +%s.%N) - $started" | bc) s"
  # Tokens live in the store: the copy holds none issued since, so ask this server.
  export TOKEN=$(admin_token "$target_port" "$dir/credentials")
  echo "== over HTTP (tagd on PostgreSQL, one replica, 4 connections unless said)"
  http_workloads
  echo "== tagd resident memory on PostgreSQL after the run: $(ps -o rss= -p $pg_pid) KiB"
fi
