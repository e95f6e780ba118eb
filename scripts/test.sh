#!/usr/bin/env bash
# The README's second command: installs the wasm target, then runs the whole
# test suite (unit, SDK doctests, CLI and end-to-end tests against mock
# providers on 127.0.0.1; plugins are built to wasm32-wasip2 by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo test "$@"
