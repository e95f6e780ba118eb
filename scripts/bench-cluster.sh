#!/usr/bin/env bash
# PostgreSQL beside redb, one host and three, in one run
# (tests/benches/cluster.rs): starts a throwaway PostgreSQL with fsync on,
# as a real deployment runs it, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
eval "$(./scripts/postgres.sh start --durable)"
trap './scripts/postgres.sh stop "$JUNCTION_PG_DIR"' EXIT
cargo bench --profile dev -p junction-tests --bench cluster "$@"
