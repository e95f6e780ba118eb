#!/usr/bin/env bash
# The README's first command: installs the wasm target, builds the host, and
# runs the MailChimp → Zoho CRM sync end to end on the embedded default
# (redb in ./junction-data, no configuration) against local mock providers.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build -p junction-host
cargo run -p junction-tests --bin junction-demo
