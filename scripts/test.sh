#!/usr/bin/env bash
# The README's second command: installs the wasm target and (when missing)
# Chromium for the console's browser tests, then runs the whole test suite
# (unit, SDK doctests, CLI, end-to-end tests against mock providers on
# 127.0.0.1, and the console in headless Chromium; plugins are built to
# wasm32-wasip2 by the tests), and checks the API against its OpenAPI
# description with schemathesis (scripts/api-check.sh, installed from PyPI
# into a cache on first use); the MCP tests use the Python `mcp` SDK from
# PyPI, installed into the same cache; TypeScript (npm, into
# /var/tmp/junction-js) checks the JavaScript SDK's types. A throwaway PostgreSQL cluster
# (scripts/postgres.sh, installed from Debian when missing) serves the
# PostgreSQL backend's tests and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
./scripts/install-chromium.sh
eval "$(./scripts/postgres.sh start)"
# The official Python MCP SDK, a client no one here wrote, for tests/tests/mcp.rs.
mcp_venv="${JUNCTION_PY_CACHE:-/var/tmp/junction-py}/mcp-2.3.0"
if [ ! -x "$mcp_venv/bin/python" ] || ! "$mcp_venv/bin/python" -c 'import mcp' 2>/dev/null; then
  rm -rf "$mcp_venv"
  python3 -m venv "$mcp_venv"
  "$mcp_venv/bin/pip" install --quiet mcp==2.3.0
fi
export JUNCTION_MCP_PYTHON="$mcp_venv/bin/python"
# TypeScript, to check the JavaScript SDK's declarations and the JavaScript
# plugins against them (tests/tests/js_sdk.rs).
tsc_dir="${JUNCTION_JS_CACHE:-/var/tmp/junction-js}/typescript-5.9.3"
if [ ! -x "$tsc_dir/node_modules/.bin/tsc" ]; then
  rm -rf "$tsc_dir"
  mkdir -p "$tsc_dir"
  echo '{"private": true}' > "$tsc_dir/package.json"
  (cd "$tsc_dir" && npm install --no-audit --no-fund --loglevel=error typescript@5.9.3)
fi
export JUNCTION_TSC="$tsc_dir/node_modules/.bin/tsc"
trap './scripts/postgres.sh stop "$JUNCTION_PG_DIR"' EXIT
# The API check first: the run ends with cargo's own summary.
./scripts/api-check.sh
cargo test "$@"
