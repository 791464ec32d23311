#!/usr/bin/env bash
# Quick start: install what is missing, build, and run kling-server on the embedded defaults
# (SQLite and results under ./data, preview engine, port 8080). Extra arguments go to `kling-server serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product kling-server
exec .build/release/kling-server serve "$@"
