#!/usr/bin/env bash
# Build .gpu_bundle/ on this machine: what the GPU machine lacks for scripts/gpu_check.sh, in
# transfers of at most 60 MiB (the repository's travelling files included). Prints each
# transfer's size; refuses when one is over. Arguments go to `python -m gpu_check bundle`
# (--data FILE: the hotpotqa JSONL, default ../shared/data/hotpotqa.jsonl; --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH="$PWD" exec .venv/bin/python -m gpu_check bundle "$@"
