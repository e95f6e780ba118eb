#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks of the
# PostgreSQL backend, never the machine's own server:
#
#   eval "$(scripts/postgres.sh start)"   # exports JUNCTION_TEST_POSTGRES and JUNCTION_PG_DIR
#   scripts/postgres.sh stop "$JUNCTION_PG_DIR"
#
# `start` installs Debian's postgresql package when no server binaries are
# found, makes a cluster in a new temporary directory, and starts it on a
# free loopback port. The server refuses to run as root, so as root it runs
# as the `postgres` user the package creates. `start --durable` keeps
# fsync on (for benchmarks); the tests' cluster runs without it.
set -euo pipefail

die() { echo "scripts/postgres.sh: $*" >&2; exit 1; }

bindir() {
    local initdb
    initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
    [ -n "$initdb" ] && dirname "$initdb"
}

install_server() {
    echo "installing Debian's postgresql package for the PostgreSQL tests" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2 || die "apt-get update failed; install the postgresql package by hand"
    $sudo apt-get install -y -qq postgresql >/dev/null \
        || die "apt-get could not install postgresql; the PostgreSQL backend cannot be tested without a server"
}

as_owner() {
    # Runs "$@" as the cluster's owner: `postgres` when we are root.
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the server as"
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

start() {
    local durable=0
    [ "${1:-}" = "--durable" ] && durable=1
    local bin
    bin="$(bindir)"
    if [ -z "$bin" ]; then
        install_server
        bin="$(bindir)"
        [ -n "$bin" ] || die "postgresql is installed but no initdb was found under /usr/lib/postgresql"
    fi
    local dir port
    dir="$(mktemp -d /tmp/junction-pg.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    local options="-p $port -k $dir -h 127.0.0.1 -c max_connections=300"
    if [ "$durable" = 0 ]; then
        options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -o "$options" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; die "the server did not start"; }
    echo "export JUNCTION_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export JUNCTION_PG_DIR=$dir"
}

stop() {
    local dir="${1:-}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    local bin
    bin="$(bindir)"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) die "usage: scripts/postgres.sh start [--durable] | stop DIR" ;;
esac
