#!/usr/bin/env bash
# The OpenAPI checks: validates the document a fresh tagd serves at /openapi.json against
# the OpenAPI 3.1 specification, then runs schemathesis against that tagd for a bounded
# number of generated requests per operation: no 5xx, every status and body as documented.
#
#   tests/openapi/run.sh [schemathesis run args...]
#
# TAGD_OPENAPI_VENV      virtualenv to use, created if missing [default: <repo>/.venv-openapi]
# TAGD_BIN               tagd binary to test; if unset, `cargo build --bin tagd` builds one
# PYTHON                 interpreter that creates the virtualenv [default: python3; 3.10 or newer]
# TAGD_OPENAPI_EXAMPLES  generated cases per operation and phase [default: 20]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${TAGD_OPENAPI_VENV:-$root/.venv-openapi}"
python="${PYTHON:-python3}"
examples="${TAGD_OPENAPI_EXAMPLES:-20}"

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "run.sh: $python is missing or older than Python 3.10; set PYTHON to a newer one" >&2
        exit 2
    fi
    echo "run.sh: creating the virtualenv $venv" >&2
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if [ -n "${TAGD_BIN:-}" ]; then
    if [ ! -x "$TAGD_BIN" ]; then
        echo "run.sh: TAGD_BIN=$TAGD_BIN is not an executable file" >&2
        exit 2
    fi
else
    cargo build --manifest-path "$root/Cargo.toml" --bin tagd
    target_dir="$(cargo metadata --manifest-path "$root/Cargo.toml" --format-version 1 --no-deps \
        | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    TAGD_BIN="$target_dir/debug/tagd"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tagd-openapi.XXXXXX")"
tagd_pid=""
cleanup() {
    if [ -n "$tagd_pid" ]; then
        kill "$tagd_pid" 2>/dev/null || true
        wait "$tagd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, then tagd on it with a throwaway data directory. Without TAGD_*
# settings from the caller's environment; --auto-register, so that the resource ids
# the fuzzer makes up exist and requests reach the tagging code.
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
env $(env | sed -n 's/^\(TAGD_[A-Za-z0-9_]*\)=.*/-u \1/p') \
    "$TAGD_BIN" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --auto-register \
    >"$work/tagd.log" 2>&1 &
tagd_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
    if [ -f "$work/data/credentials" ] && curl -sf -o /dev/null "$base/openapi.json"; then
        break
    fi
    if ! kill -0 "$tagd_pid" 2>/dev/null; then
        echo "run.sh: tagd exited at start:" >&2
        cat "$work/tagd.log" >&2
        exit 1
    fi
    sleep 0.1
done

# Tokens of the first-run administrator: scoped to its project, which reaches every
# project route (schemathesis.toml puts that project's id in every path), and to its
# domain, which the domain's own calls need (admin API, access keys, predefined tags).
credential() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" "$work/data/credentials"; }
export TAGD_PROJECT_ID
TAGD_PROJECT_ID="$(credential project_id)"
token() {
    curl -si "$base/v3/auth/tokens" -H 'Content-Type: application/json' -d "$(
        printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","password":"%s","domain":{"name":"%s"}}}},"scope":%s}}' \
            "$(credential user_name)" "$(credential password)" "$(credential domain_name)" "$1"
    )" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}
project_token="$(token '{"project":{"id":"'"$TAGD_PROJECT_ID"'"}}')"
domain_token="$(token '{"domain":{"name":"'"$(credential domain_name)"'"}}')"
if [ -z "$project_token" ] || [ -z "$domain_token" ]; then
    echo "run.sh: could not get tokens from tagd" >&2
    exit 1
fi

echo "== OpenAPI document: validating $base/openapi.json"
curl -sf "$base/openapi.json" -o "$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

# schemathesis keeps its example database in the working directory: the throwaway one.
cd "$work"
seed="${TAGD_OPENAPI_SEED:-$RANDOM}"
# One worker: with two, hypothesis parses lambdas' source from two threads, which
# CPython 3.11 can fail ("AST constructor recursion depth mismatch").
fuzz() {
    "$venv/bin/schemathesis" --no-color --config-file "$here/schemathesis.toml" \
        run "$base/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --max-examples "$examples" \
        --workers 1 \
        --request-timeout 10 \
        --seed "$seed" \
        "$@"
}
status=0
echo "== schemathesis, project-scoped token: every operation, $examples cases per operation and phase"
fuzz --header "X-Auth-Token: $project_token" "$@" || status=$?
echo "== schemathesis, domain-scoped token: the domain's own calls"
fuzz --header "X-Auth-Token: $domain_token" \
    --include-tag Admin --include-tag IAM --include-path-regex '^/v1\.0/predefine_tags' "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "run.sh: schemathesis failed; tagd's log ends:" >&2
    tail -n 40 "$work/tagd.log" >&2
fi
exit "$status"
