#!/usr/bin/env bash
# Set up (first run) and launch the app on the bundled model: http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
exec .venv/bin/python app.py "$@"
