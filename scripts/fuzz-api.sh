#!/usr/bin/env bash
# Fuzzes the real kling-server against its own OpenAPI document with schemathesis (scripts/test.sh runs this after
# `swift test`): starts the debug build on a free loopback port with a temporary data directory and no workers,
# creates an account with plenty of credits and no limits, runs schemathesis with every auth scheme (Bearer API key,
# x-api-key, Kling JWT) and checks no 5xx, responses that conform to the document (status codes, content types,
# headers, schemas), schema-invalid requests refused, and that every stored task came from a create the server
# accepted (the task ids of 2xx creates, recorded by scripts/fuzz/hooks.py, against the tasks in the SQLite file).
#
# Environment: KLING_SERVER_BIN (default .build/debug/kling-server), KLING_FUZZ_EXAMPLES (cases per operation and
# phase, default 40), KLING_FUZZ_SEED (default 1; "random" for a new one), KLING_FUZZ_MIN_REQUESTS (default 2000),
# KLING_FUZZ_KEEP=1 keeps the temporary directory (server log, calls, reports).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
binary=${KLING_SERVER_BIN:-$root/.build/debug/kling-server}
examples=${KLING_FUZZ_EXAMPLES:-40}
seed=${KLING_FUZZ_SEED:-1}
min_requests=${KLING_FUZZ_MIN_REQUESTS:-2000}
[ -x "$binary" ] || { echo "fuzz-api: $binary not found; build first (swift build)"; exit 1; }
command -v schemathesis >/dev/null || { echo "fuzz-api: schemathesis is not installed (scripts/install-deps.sh)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kling-fuzz.XXXXXX")
data="$work/data"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "${KLING_FUZZ_KEEP:-}" ]; then echo "fuzz-api: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

admin() { "$binary" "$@" --data-dir "$data"; }
admin accounts create fuzz --credits 1000000000000 >/dev/null
admin limits set fuzz --creates 0 --queries 0 --max-active 0 >/dev/null
key=$(admin keys create --account fuzz | tail -n 1)
jwt_pair=$(admin keys create --account fuzz --kind jwt)
access_key=$(sed -n 's/^access key: //p' <<<"$jwt_pair")
secret_key=$(sed -n 's/^secret key: //p' <<<"$jwt_pair")
# A Kling JWT (HS256: iss = access key, exp, nbf), valid for the whole run.
jwt=$(ACCESS="$access_key" SECRET="$secret_key" python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"iss": os.environ["ACCESS"], "exp": now + 7200, "nbf": now - 5}).encode())
signature = hmac.new(os.environ["SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(signature)}")
PY
)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KLING_LOG_FORMAT=json KLING_LOG_LEVEL=info "$binary" serve --host 127.0.0.1 --port "$port" --data-dir "$data" --workers 0 \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$base/healthz" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "fuzz-api: the server exited"; cat "$work/server.log"; exit 1; }
  sleep 0.2
done

seed_option=()
[ "$seed" != "random" ] && seed_option=(--seed "$seed")
echo "fuzz-api: schemathesis against $base/openapi.json ($examples examples per operation and phase)"
started=$(date +%s)
status=0
# From the temporary directory, so schemathesis's cache (.schemathesis/) stays out of the checkout.
(cd "$work" && KLING_FUZZ_KEY="$key" KLING_FUZZ_JWT="$jwt" KLING_FUZZ_CALLS="$work/calls.jsonl" SCHEMATHESIS_HOOKS="$root/scripts/fuzz/hooks.py" \
  schemathesis --config-file "$root/scripts/fuzz/schemathesis.toml" run "${KLING_FUZZ_SCHEMA:-$base/openapi.json}" --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth \
  --phases examples,coverage,fuzzing --mode all --max-examples "$examples" "${seed_option[@]}" \
  --workers 1 --request-timeout 30 --suppress-health-check all --continue-on-failure \
  --report junit --report-dir "$work/report") || status=$?
elapsed=$(( $(date +%s) - started ))

kill -0 "$server_pid" 2>/dev/null || { echo "fuzz-api: the server died during the run"; tail -n 50 "$work/server.log"; exit 1; }

# The figures: calls by operation and status, 5xx, and stored tasks against accepted creates.
python3 - "$work/calls.jsonl" "$data/kling.sqlite" "$min_requests" "$status" "$elapsed" <<'PY' || status=1
import collections, json, os, sqlite3, sys
calls_path, database, minimum, schemathesis_status, elapsed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
calls = [json.loads(line) for line in open(calls_path)] if os.path.exists(calls_path) else []
by_op = collections.Counter(call["op"] for call in calls)
statuses = collections.Counter(call["status"] for call in calls)
server_errors = [call for call in calls if call["status"] >= 500]
accepted = {call["task"] for call in calls if "task" in call}
unreadable = [call for call in calls if "task_error" in call]
with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
    stored = {row[0] for row in db.execute("SELECT id FROM tasks")}
stray = stored - accepted
missing = accepted - stored
print(f"fuzz-api: {len(calls)} requests in {elapsed} s over {len(by_op)} operations")
for op, count in sorted(by_op.items()):
    print(f"  {count:6d}  {op}")
print("fuzz-api: statuses " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
schemes = collections.Counter(call.get("auth", "?") for call in calls)
print("fuzz-api: credentials " + ", ".join(f"{scheme}: {n}" for scheme, n in sorted(schemes.items())))
print(f"fuzz-api: {len(accepted)} tasks from 2xx creates, {len(stored)} tasks stored, {len(stray)} stored without an accepted create, "
      f"{len(missing)} accepted but not stored")
failed = False
if len(calls) < minimum:
    print(f"FAIL: only {len(calls)} requests (at least {minimum} wanted)"); failed = True
if server_errors:
    print(f"FAIL: {len(server_errors)} answers were 5xx"); failed = True
if stray:
    print(f"FAIL: tasks stored from refused requests: {sorted(stray)[:10]}"); failed = True
if missing:
    print(f"FAIL: creates answered 2xx but stored nothing: {sorted(missing)[:10]}"); failed = True
for scheme in ("bearer", "x-api-key", "jwt"):
    if schemes[scheme] == 0:
        print(f"FAIL: no request used the {scheme} credential"); failed = True
if unreadable:
    print(f"FAIL: {len(unreadable)} 2xx create answers without a task id"); failed = True
if schemathesis_status != 0:
    print(f"FAIL: schemathesis reported failures (exit status {schemathesis_status})"); failed = True
sys.exit(1 if failed else 0)
PY
admin ledger check >/dev/null || { echo "FAIL: ledger check"; status=1; }
if [ "$status" -ne 0 ]; then
  echo "fuzz-api: FAILED (server log: last lines below)"
  tail -n 20 "$work/server.log"
  exit 1
fi
echo "fuzz-api: ok"
