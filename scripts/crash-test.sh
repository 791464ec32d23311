#!/usr/bin/env bash
# Crash-safety test of multi-node operation (issue #6): a throwaway PostgreSQL, 2 API processes and 3 worker
# processes of the debug kling-server, at least 300 tasks through the Market and CRUN dialects with signed callbacks
# to a loopback receiver, a random process SIGKILLed and restarted every 2-4 s (at least 20 kills) and a few workers
# frozen (SIGSTOP) past their lease and resumed. Then every accepted task must be terminal, none completed twice,
# balances must equal the expected charges, every terminal task must have had a signed callback, and no request may
# have answered 5xx unless its process was being killed.
#
#   scripts/crash-test.sh [crash_test.py options]     # e.g. --tasks 300 --kills 20 --seed 42
#
# Needs the debug build (.build/debug/kling-server, or KLING_SERVER=PATH), the postgresql package and python3.
# Logs, request/kill/callback journals and figures land in test-artifacts/crash-test/ (or KLING_CRASH_ARTIFACTS).
set -euo pipefail
cd "$(dirname "$0")/.."

# The worker role's command line (before --port): the one line to change when the worker role changes.
worker_command="work --workers 1"

server=${KLING_SERVER:-.build/debug/kling-server}
artifacts=${KLING_CRASH_ARTIFACTS:-test-artifacts/crash-test}
[ -x "$server" ] || { echo "crash-test: $server not found; build it first (swift build --product kling-server)" >&2; exit 1; }
mkdir -p "$artifacts"
# Only what an earlier run left (never the directory itself: it may be one the caller named).
(cd "$artifacts" && rm -rf logs shared data pids tasks.json figures.json requests.jsonl kills.jsonl callbacks.jsonl freezes.jsonl)

pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/kling-crash-pg.XXXXXX")
runner_pid=""
cleanup() {
  status=$?
  # The Python runner stops its processes itself; this is the last resort if it was killed before it could.
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  if [ -f "$artifacts/pids" ]; then
    while read -r pid; do
      # Only process groups this test started that still run kling-server.
      if [ -n "$pid" ] && grep -qa kling-server "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    done <"$artifacts/pids"
  fi
  scripts/start-postgres.sh --stop "$pg_dir" || true
  if [ "$status" -ne 0 ]; then
    echo "crash-test: FAILED; logs, journals and figures are kept in $artifacts/ (logs/*.log: one per process)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KLING_DATABASE_URL=$(scripts/start-postgres.sh "$pg_dir")
export KLING_DATABASE_URL

python3 -u scripts/crash_test.py --server "$server" --artifacts "$artifacts" --worker-command "$worker_command" "$@" &
runner_pid=$!
wait "$runner_pid"
