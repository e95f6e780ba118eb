#!/usr/bin/env bash
# The README's first command: installs the wasm target, builds the host, and
# runs the MailChimp → Zoho CRM sync end to end on the embedded default
# (redb in ./junction-data, no configuration) against local mock providers.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
# One cargo invocation for both binaries: cargo unifies features per
# invocation, so building `junction` and the demo separately would compile
# most dependencies twice.
cargo build -p junction-host -p junction-tests --bin junction --bin junction-demo
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
exec "$target_dir/debug/junction-demo" "$@"
