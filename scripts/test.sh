#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test.
# Suites run one after another: several render video or stream 100 MB through a debug build, and on a 2-core
# machine running them side by side starves the ones that wait on renders and callbacks (about 3 minutes in all).
# Then the API is fuzzed against its OpenAPI document (scripts/fuzz-api.sh, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A throwaway PostgreSQL cluster for the PostgreSQL store's tests, stopped and deleted however the run ends.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/kling-pg.XXXXXX")
trap 'scripts/start-postgres.sh --stop "$pg_dir"' EXIT
KLING_TEST_DATABASE_URL=$(scripts/start-postgres.sh "$pg_dir")
export KLING_TEST_DATABASE_URL
swift build --build-tests
swift test --skip-build --no-parallel
# Multi-node crash safety on PostgreSQL (#6): 2 API + 3 worker processes, 300 tasks, at least 20 SIGKILLs; logs in
# test-artifacts/crash-test/.
scripts/crash-test.sh
# The playground page in headless Chromium against the debug kling-server; screenshots in test-artifacts/playground.
python3 Tests/Playground/playground_ui_test.py --server .build/debug/kling-server --artifacts test-artifacts/playground
scripts/fuzz-api.sh
