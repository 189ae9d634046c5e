#!/usr/bin/env bash
# A PostgreSQL server of its own on loopback, for the tests marked `postgres` (and for trying the
# README's team recipe by hand). Debian's postgresql package; a fresh cluster per start, so a test
# never sees another's tables, and the machine's own cluster (if any) is never touched.
#
#   bash tests/services/postgres.sh install      # apt package, once per machine (root)
#   bash tests/services/postgres.sh start PORT   # new cluster on 127.0.0.1:PORT; prints the MLflow URI
#   bash tests/services/postgres.sh stop PORT    # fast shutdown, cluster files removed
#
# The database `mlflow` belongs to the role `mlflow` (password `mlflow`), as the README's recipe has it.
set -euo pipefail

PORT=${2:-55432}
DIR=/tmp/lenet-postgres-$PORT

bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# As root, the server runs as Debian's `postgres` user (it refuses to run as root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
    if [ -n "$(bin_dir)" ] && [ -x "$(bin_dir)/initdb" ]; then return; fi
    if [ "$(id -u)" != 0 ]; then echo "postgres.sh: install needs root" >&2; exit 1; fi
    apt-get update -qq  # a clean machine's package lists are missing or stale
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

start() {
    local bin
    bin=$(bin_dir)
    if [ -z "$bin" ]; then echo "postgres.sh: PostgreSQL is not installed; run: $0 install" >&2; exit 1; fi
    stop
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; fi
    as_owner "$bin/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 >"$DIR/initdb.log"
    # fsync off: a test database, thrown away at stop; it makes MLflow's ~40 migrations 3x faster.
    as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off" >/dev/null
    # The role is made over the unix socket (trust, this cluster's owner); clients on 127.0.0.1 need the password.
    as_owner "$bin/psql" -q -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE mlflow LOGIN PASSWORD 'mlflow'" -c "CREATE DATABASE mlflow OWNER mlflow" >/dev/null
    echo "postgresql+psycopg2://mlflow:mlflow@127.0.0.1:$PORT/mlflow"
}

stop() {
    local bin
    bin=$(bin_dir)
    if [ -n "$bin" ] && [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null || true
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install | start PORT | stop PORT" >&2; exit 2 ;;
esac
