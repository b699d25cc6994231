#!/usr/bin/env bash
# Set up (first run) and run the whole test suite: unit tests on tiny random models,
# integration tests on the bundled SmolLM2, gradio_client and browser (Chromium) tests, and
# the shared chunk store against a real redis-server the tests start on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's chromium; the shared-store tests start Debian's redis-server.
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/redis-server ] || missing="$missing redis-server"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $missing >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq $missing >/dev/null; fi
fi
bash scripts/setup.sh requirements-dev.txt
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
