#!/usr/bin/env bash
# Runs the SDK conformance suite: the official Huawei Cloud Python SDKs, unmodified,
# against a freshly started tagd.
#
#   tests/sdk/run.sh [pytest args...]
#
# TAGD_SDK_VENV  virtualenv to use, created if missing [default: <repo>/.venv-sdk]
# TAGD_BIN       tagd binary to test; if unset, `cargo build --bin tagd` builds one
# PYTHON         interpreter that creates the virtualenv [default: python3; 3.10 or newer]
# TAGD_SDK_BACKEND=postgres  runs tagd on a fresh PostgreSQL database on the server
#                TAGD_TEST_DATABASE_URL names [default postgres://postgres@127.0.0.1:5432/postgres],
#                created and dropped here (needs psql)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${TAGD_SDK_VENV:-$root/.venv-sdk}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "run.sh: $python is missing or older than Python 3.10; set PYTHON to a newer one" >&2
        exit 2
    fi
    echo "run.sh: creating the virtualenv $venv" >&2
    "$python" -m venv "$venv"
fi
# Already-satisfied pins are checked locally; pip goes to the index only for what is missing.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if [ -n "${TAGD_BIN:-}" ]; then
    if [ ! -x "$TAGD_BIN" ]; then
        echo "run.sh: TAGD_BIN=$TAGD_BIN is not an executable file" >&2
        exit 2
    fi
    TAGD_BIN="$(cd "$(dirname "$TAGD_BIN")" && pwd)/$(basename "$TAGD_BIN")"
else
    cargo build --manifest-path "$root/Cargo.toml" --bin tagd
    target_dir="$(cargo metadata --manifest-path "$root/Cargo.toml" --format-version 1 --no-deps \
        | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    TAGD_BIN="$target_dir/debug/tagd"
fi
export TAGD_BIN

cd "$root"
export PYTHONDONTWRITEBYTECODE=1
if [ "${TAGD_SDK_BACKEND:-sqlite}" = postgres ]; then
    server="${TAGD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    database="tagd_sdk_$$"
    psql "$server" -qc "CREATE DATABASE $database" >/dev/null
    trap 'psql "$server" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null' EXIT
    export TAGD_SDK_DATABASE_URL="${server%/*}/$database"
    echo "run.sh: tagd on PostgreSQL (database $database)" >&2
    "$venv/bin/python" -m pytest tests/sdk -q "$@"
else
    exec "$venv/bin/python" -m pytest tests/sdk -q "$@"
fi
