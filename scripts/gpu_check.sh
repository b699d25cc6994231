#!/usr/bin/env bash
# The GPU check, on the GPU machine (README.md, "GPU check"): the engine's forward against
# Hugging Face's in fp32 and bf16, the link invariants, fidelity in bf16 beside fp32 (first-token
# KL, attention on chunk starts) and the speed sweep to 8K tokens on SmolLM2 and on a random
# Llama-8B-shaped model, in one command well inside 8 minutes.
#
#   bash scripts/gpu_check.sh store        # every call but the last: keep its weights part
#   bash scripts/gpu_check.sh run OUTDIR   # the last call: join, verify, install, check
#
# What it needs comes in the bundle (scripts/gpu_bundle.sh, built on the development machine):
# .gpu_bundle/transfer-N, one per call. Weights parts are kept between calls in
# $GPU_CHECK_STASH (default /tmp/epic-gpu-stash), outside the repository copy. PYTHON picks the
# interpreter (default python3). GPU_CHECK_STEPS=fidelity,speed-smollm2 runs only those steps
# (env always runs), e.g. again with the device time left. GPU_CHECK_DRY=1 rehearses `run` on
# a CPU with small shapes (scripts/gpu_rehearse.sh does that from the bundle alone, in a clean
# virtualenv).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
case "${1:-}" in
  store)
    command -v nvidia-smi >/dev/null && nvidia-smi -L
    exec "$py" -m gpu_check store ;;
  run)
    out=${2:?usage: bash scripts/gpu_check.sh run OUTDIR}
    dry=()
    [ "${GPU_CHECK_DRY:-0}" = 1 ] && dry=(--dry)
    exec "$py" -m gpu_check run --out "$out" "${dry[@]}" ;;
  *)
    echo "usage: bash scripts/gpu_check.sh store | run OUTDIR" >&2
    exit 2 ;;
esac
