#!/usr/bin/env bash
# Benchmarks, all in one run on this machine: HTTP (wrk) against a bare Hummingbird baseline, and the preview
# renderer against bare ffmpeg encoding. Prints markdown tables for BENCHMARKS.md.
# Profiles quoted in BENCHMARKS.md were taken with `perf record` from Debian's linux-perf (optional, not installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product kling-server
swift build -c release --product HelloBench
swift build -c release --product RenderBench
swift build -c release --product HotPathBench
swift build -c release --product EngineOverheadBench
BIN=.build/release
DURATION=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "server did not start: $1"; exit 1; }

# wrk prints "Requests/sec: N" and a latency distribution with --latency; pull req/s and p99 in ms.
run_wrk() {
  local out
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_ms "$p99")"
}
to_ms() { case "$1" in *us) echo "${1%us}" | awk '{printf "%.3f", $1/1000}';; *ms) echo "${1%ms}";; *s) echo "${1%s}" | awk '{printf "%.1f", $1*1000}';; *) echo "$1";; esac; }

$BIN/HelloBench 18090 & pids+=($!)
wait_up http://127.0.0.1:18090/hello

"$BIN/kling-server" accounts create bench --credits 1000000000 --data-dir "$work/data" >/dev/null
# The benchmark measures the request paths, not the limits that would turn most of its requests into 429s.
"$BIN/kling-server" limits set bench --creates 0 --queries 0 --max-active 0 --data-dir "$work/data" >/dev/null
KEY=$("$BIN/kling-server" keys create --account bench --data-dir "$work/data" | tail -n 1)
KLING_LOG_LEVEL=error "$BIN/kling-server" serve --port 18091 --workers 0 --data-dir "$work/data" >/dev/null & pids+=($!)
wait_up http://127.0.0.1:18091/healthz
BODY='{"model":"kling-3.0/video","input":{"prompt":"A red fox runs through snow at dawn","duration":"5","mode":"std","sound":true}}'
TASK=$(curl -s http://127.0.0.1:18091/api/v1/jobs/createTask -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$BODY" | sed -E 's/.*"taskId":"([^"]+)".*/\1/')

cat > "$work/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA

read -r hello_rps hello_p99 < <(run_wrk http://127.0.0.1:18090/hello)
read -r info_rps info_p99 < <(run_wrk -H "Authorization: Bearer $KEY" "http://127.0.0.1:18091/api/v1/jobs/recordInfo?taskId=$TASK")
read -r create_rps create_p99 < <(run_wrk -s "$work/create.lua" http://127.0.0.1:18091/api/v1/jobs/createTask)

echo
echo "## HTTP ($(nproc) cores, wrk -t1 -c$CONNECTIONS -d${DURATION}s, release build, SQLite, API-only process)"
echo "| endpoint | req/s | p99 (ms) | vs hello-world |"
echo "|---|---|---|---|"
printf "| bare Hummingbird hello-world | %s | %s | 1.00x |\n" "$hello_rps" "$hello_p99"
printf "| GET recordInfo | %s | %s | %sx |\n" "$info_rps" "$info_p99" "$(awk -v a="$info_rps" -v b="$hello_rps" 'BEGIN{printf "%.2f", a/b}')"
printf "| POST createTask | %s | %s | %sx |\n" "$create_rps" "$create_p99" "$(awk -v a="$create_rps" -v b="$hello_rps" 'BEGIN{printf "%.2f", a/b}')"

echo
echo "## Store hot paths (no HTTP)"
$BIN/HotPathBench

echo
echo "## GPU engine overhead (openai-videos against a loopback server that finishes at once)"
$BIN/EngineOverheadBench "${BENCH_ENGINE_TASKS:-200}" 2>/dev/null

[ -n "${BENCH_SKIP_RENDER:-}" ] && exit 0
echo
echo "## Preview render vs bare ffmpeg encode (same size, frames and x264 preset; median of ${BENCH_REPEATS:-3})"
$BIN/RenderBench
