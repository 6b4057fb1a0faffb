# Sourced by the bench scripts: reading a fresh tagd's first-run credentials, getting
# the administrator a domain-scoped token, and registering the instances workloads tag.

# credential FILE NAME: a field of a `credentials` file.
credential() {
  sed -n "s/^$2 = \"\(.*\)\"/\1/p" "$1"
}

# admin_token PORT CREDENTIALS_FILE: a domain-scoped token for the first-run
# administrator from the tagd on 127.0.0.1:PORT (whose store holds those credentials).
admin_token() {
  local pw; pw=$(credential "$2" password)
  curl -si "http://127.0.0.1:$1/v3/auth/tokens" -H 'Content-Type: application/json' \
    -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","password":"'"$pw"'","domain":{"name":"tagd"}}}},"scope":{"domain":{"name":"tagd"}}}}' \
    | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}

# register_rds PORT TOKEN PROJECT CSV_PATH: registers RDS instances rds-0..999 in PROJECT
# through the admin API (W2, W3 and the soak mix tag them), via a CSV written at CSV_PATH.
register_rds() {
  python3 - "$3" > "$4" <<'PY'
import sys
print("project_id,resource_type,resource_id,name")
for i in range(1000):
    print(f"{sys.argv[1]},rds,rds-{i},")
PY
  curl -sf -o /dev/null "http://127.0.0.1:$1/tagd/v1/resources" -H "X-Auth-Token: $2" \
    -H 'Content-Type: text/csv' --data-binary @"$4" \
    || { echo "registering rds-0..999 failed" >&2; return 1; }
}
