#!/usr/bin/env bash
# Set up (first run) and run the whole test suite: unit tests on tiny random models,
# integration tests on the bundled SmolLM2, gradio_client and browser (Chromium) tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then  # the browser tests drive Debian's chromium
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
bash scripts/setup.sh requirements-dev.txt
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
