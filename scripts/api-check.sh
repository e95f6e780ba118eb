#!/usr/bin/env bash
# Checks that the API is exactly what /v1/openapi.json says: starts a real
# `junction serve` on a temporary data directory with `hello` deployed and
# runs schemathesis (from PyPI, installed into a cache) against it with
# every check (enabled in scripts/schemathesis.toml, which says the two
# exceptions and why), for a bounded time and a fixed seed. Routes that change the
# credentials schemathesis itself uses (token and key rotation) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cache="${JUNCTION_PY_CACHE:-/var/tmp/junction-py}"
venv="$cache/schemathesis-4.32.5"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet schemathesis==4.32.5
fi
cargo build --quiet -p junction-host
junction="$target/debug/junction"
data="$(mktemp -d)"
out="$data/serve.out"
"$junction" serve --listen 127.0.0.1:0 --data-dir "$data/data" >"$out" 2>"$data/serve.err" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
url=""
for _ in $(seq 1 200); do
  url="$(sed -n 's/^junction listening on \([^ ]*\).*/\1/p' "$out" | head -n1)"
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "junction serve did not start:"; cat "$data/serve.err"; exit 1; }
token="$(cat "$data/data/admin-token")"
"$junction" deploy plugins/hello --url "$url" --token "$token" \
  --target-dir "${JUNCTION_PLUGIN_TARGET_DIR:-$target/plugins}" >/dev/null
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml --no-color \
  run "$url/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --exclude-path /v1/token/rotate --exclude-path /v1/key/rotate \
  --max-time "${JUNCTION_API_CHECK_SECS:-90}" \
  --seed 20261202
