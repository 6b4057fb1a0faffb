# Sourced by the bench scripts: reading a fresh tagd's first-run credentials and getting
# the administrator a domain-scoped token.

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
