#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests and prints its URL (the only line on stdout).
#
#   scripts/start-postgres.sh [DIR]          # initialises DIR (default: a new temp dir), starts, prints the URL
#   scripts/start-postgres.sh --stop DIR     # stops that cluster and deletes DIR
#
# The cluster listens on 127.0.0.1 only (a free port, or KLING_PG_PORT), trusts local connections (it holds test
# data only), skips fsync (KLING_PG_DURABLE=1 keeps it), and has one database `kling` owned by the user `kling`. As root, the server runs as the
# `postgres` user (created by Debian's postgresql package), since PostgreSQL refuses to run as root.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ]; then
  bindir=$(dirname "$(command -v initdb || command -v pg_ctl || echo /nonexistent/x)")
fi
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found; install the postgresql package (scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = "--stop" ]; then
  dir=${2:?usage: start-postgres.sh --stop DIR}
  if [ -f "$dir/data/postmaster.pid" ]; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true; fi
  rm -rf "$dir"
  exit 0
fi

dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/kling-pg.XXXXXX")}
mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "running as root needs the postgres user (Debian's postgresql package creates it)" >&2; exit 1; }
  chown postgres: "$dir"
fi

port=${KLING_PG_PORT:-}
if [ -z "$port" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo 55432)
fi

as_owner "$bindir/initdb" -D "$dir/data" -U kling --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# Test data needs no durability; KLING_PG_DURABLE=1 keeps PostgreSQL's crash-safe defaults (benchmarks use it).
durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ -n "${KLING_PG_DURABLE:-}" ] && durability=""
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir $durability -c max_connections=300" \
  >&2 || { cat "$dir/server.log" >&2; exit 1; }
as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U kling -O kling kling >&2
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') running in $dir on 127.0.0.1:$port (stop: scripts/start-postgres.sh --stop $dir)" >&2
echo "postgres://kling@127.0.0.1:$port/kling"
