#!/usr/bin/env bash
# Set up (first run) and launch the app on the bundled model: http://127.0.0.1:7860
# Run locally, you are its operator: store-wide actions (clear all, save/load stores) are on.
# The app's other limits come from EPIC_* variables (app/limits.py); a public Space leaves
# EPIC_OPERATOR unset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
export EPIC_OPERATOR="${EPIC_OPERATOR:-1}"
exec .venv/bin/python app.py "$@"
