#!/usr/bin/env bash
# SQLite versus PostgreSQL in one run: createTask throughput (wrk against an API-only kling-server on each store) and
# enqueue-to-claim latency (QueueBench). PostgreSQL runs on this machine with its durable defaults (fsync and
# synchronous_commit on). Prints markdown tables for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product kling-server
swift build -c release --product HelloBench
swift build -c release --product QueueBench
BIN=.build/release
DURATION=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
work=$(mktemp -d)
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/kling-pg.XXXXXX")  # its own: as root, the postgres user must reach it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/start-postgres.sh --stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PG_URL=$(KLING_PG_DURABLE=1 scripts/start-postgres.sh "$pg_dir")

wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "server did not start: $1"; exit 1; }
to_ms() { case "$1" in *us) echo "${1%us}" | awk '{printf "%.3f", $1/1000}';; *ms) echo "${1%ms}";; *s) echo "${1%s}" | awk '{printf "%.1f", $1*1000}';; *) echo "$1";; esac; }
run_wrk() {
  local out rps p99
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_ms "$p99")"
}
BODY='{"model":"kling-3.0/video","input":{"prompt":"A red fox runs through snow at dawn","duration":"5","mode":"std","sound":true}}'

# Starts an API-only server on $2 for the store named $1 (sqlite or postgres); sets KEY to the account's key.
start_store() {
  local name=$1 port=$2 env=()
  [ "$name" = postgres ] && env=(KLING_DATABASE_URL="$PG_URL")
  env "${env[@]}" "$BIN/kling-server" accounts create bench --credits 1000000000 --data-dir "$work/$name" >/dev/null
  env "${env[@]}" "$BIN/kling-server" limits set bench --creates 0 --queries 0 --max-active 0 --data-dir "$work/$name" >/dev/null
  KEY=$(env "${env[@]}" "$BIN/kling-server" keys create --account bench --data-dir "$work/$name" | tail -n 1)
  env "${env[@]}" KLING_LOG_LEVEL=error "$BIN/kling-server" serve --port "$port" --workers 0 --data-dir "$work/$name" >/dev/null 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/healthz"
}

$BIN/HelloBench 18190 & pids+=($!)
wait_up http://127.0.0.1:18190/hello
read -r hello_rps hello_p99 < <(run_wrk http://127.0.0.1:18190/hello)

echo
echo "## createTask on SQLite and PostgreSQL ($(nproc) cores, wrk -t1 -c$CONNECTIONS -d${DURATION}s, release build, API-only process)"
echo "| store | createTask req/s | p99 (ms) | vs hello-world |"
echo "|---|---|---|---|"
printf "| bare Hummingbird hello-world | %s | %s | 1.00x |\n" "$hello_rps" "$hello_p99"
port=18191
for store in sqlite postgres; do
  start_store "$store" "$port"
  cat > "$work/create-$store.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
  read -r rps p99 < <(run_wrk -s "$work/create-$store.lua" "http://127.0.0.1:$port/api/v1/jobs/createTask")
  printf "| %s | %s | %s | %sx |\n" "$store" "$rps" "$p99" "$(awk -v a="$rps" -v b="$hello_rps" 'BEGIN{printf "%.2f", a/b}')"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  port=$((port + 1))
done

echo
echo "## Enqueue-to-claim latency (tasks queued 10 ms apart; idle claimer as in TaskWorker, polling every 500 ms)"
# A database of its own: the claimer takes the oldest queued task, and the createTask run above left thousands.
psql "$PG_URL" -qc "CREATE DATABASE queuebench" >/dev/null
KLING_DATABASE_URL="${PG_URL%/kling}/queuebench" $BIN/QueueBench "${BENCH_QUEUE_TASKS:-500}"
