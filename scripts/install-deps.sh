#!/usr/bin/env bash
# Installs the system packages KlingKit needs (Debian/Ubuntu): ffmpeg + ffprobe, espeak-ng, a caption font,
# SQLite headers, libavformat headers (the preview engine joins pieces with it), bsdutils (`script`: a pseudo-terminal
# for the CLI's progress-bar test), headless Chromium with its WebDriver for the playground's UI test, and the PostgreSQL
# server (the store tests start a throwaway cluster with scripts/start-postgres.sh). Skips apt
# when everything is already there.
set -euo pipefail
packages=(ffmpeg libavformat-dev libavfilter-dev pkg-config espeak-ng fonts-dejavu-core libsqlite3-dev wrk bsdutils chromium chromium-driver postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v swift >/dev/null || { echo "Swift 6.2 or later is required (https://swift.org/install)"; exit 1; }
# Tests use independent clients from PyPI: the standardwebhooks package checks our callback signatures, the
# official openai package drives the OpenAI Videos dialect, and schemathesis fuzzes the API against its OpenAPI
# document (scripts/fuzz-api.sh; pinned so CI runs the same checks).
if [ -n "${KLING_SKIP_PYTHON_DEPS:-}" ]; then exit 0; fi
schemathesis_version=4.32.5
if command -v python3 >/dev/null && ! python3 -c "import standardwebhooks, openai" 2>/dev/null; then
  python3 -m pip install --quiet standardwebhooks openai 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages standardwebhooks openai \
    || echo "warning: could not install the standardwebhooks and openai packages; the tests that use them will fail"
fi
if command -v python3 >/dev/null \
  && [ "$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$schemathesis_version" ]; then
  python3 -m pip install --quiet "schemathesis==$schemathesis_version" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "schemathesis==$schemathesis_version" \
    || echo "warning: could not install schemathesis; scripts/fuzz-api.sh will fail"
fi
# The playground's UI test drives Chromium with selenium (pinned).
if command -v python3 >/dev/null && ! python3 -c "import selenium, sys; sys.exit(selenium.__version__ != '4.51.0')" 2>/dev/null; then
  python3 -m pip install --quiet selenium==4.51.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages selenium==4.51.0 \
    || echo "warning: could not install selenium; the playground UI test will fail"
fi
