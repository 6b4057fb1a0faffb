#!/usr/bin/env bash
# Checks deploy/tagd.service with `systemd-analyze verify`, with ExecStart pointed at a
# real tagd binary (the first argument), since verify also checks that the command exists.
# Exits 0 with a notice, not a pass, where systemd-analyze is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: deploy/verify-unit.sh PATH_TO_TAGD}"
if ! command -v systemd-analyze >/dev/null; then
  echo "deploy/verify-unit.sh: NOT CHECKED: systemd-analyze is not installed here" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/tagd#$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")#" \
  "$here/tagd.service" > "$work/tagd.service"
# Warnings about the host (no network-online.target in a container, say) are not the
# unit's; only messages naming the unit file fail the check.
out=$(systemd-analyze verify "$work/tagd.service" 2>&1 || true)
if grep -q "tagd.service" <<<"$out"; then
  echo "$out" >&2
  echo "deploy/verify-unit.sh: deploy/tagd.service does not verify" >&2
  exit 1
fi
echo "deploy/tagd.service: systemd-analyze verify found nothing to report${out:+ about the unit (host notes: $(wc -l <<<"$out") lines)}"
