#!/usr/bin/env bash
# The GPU check rehearsed on this CPU from the bundle alone, as the GPU machine receives it:
#   call 1..N-1: an empty folder gets the repository's travelling files (tracked, and
#                untracked but not ignored) and .gpu_bundle/transfer-i; `gpu_check.sh store`;
#   call N:      another empty folder, the same files and the last transfer;
#                `GPU_CHECK_DRY=1 gpu_check.sh run OUTDIR` (small shapes, on the CPU).
# Every call shares one stash folder, as calls on one warm machine do.
#
#   bash scripts/gpu_rehearse.sh [OUTDIR]
#
# It runs in a clean virtualenv holding requirements-gpu-check.txt only (what the GPU image
# has: transformers 5.17, ...; made once at $GPU_REHEARSAL_VENV, default
# ~/.cache/epic-lab/gpu-rehearsal-venv, with $GPU_REHEARSAL_PYTHON, default python3.11, the
# Python of this machine's CPU build of torch), plus the bundle's own wheels, which the check
# installs itself. PYTHON=... uses that interpreter instead; GPU_BUNDLE=DIR another bundle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=$(realpath "${GPU_BUNDLE:-$root/.gpu_bundle}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$(realpath -m "${1:-$work/out}")
if [ -z "${PYTHON:-}" ]; then
  venv=${GPU_REHEARSAL_VENV:-$HOME/.cache/epic-lab/gpu-rehearsal-venv}
  if [ ! -x "$venv/bin/python" ]; then
    "${GPU_REHEARSAL_PYTHON:-python3.11}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q -r "$root/requirements-gpu-check.txt"
  fi
  PYTHON=$venv/bin/python
fi
export PYTHON GPU_CHECK_STASH=$work/stash
"$PYTHON" -c 'import sys, torch, transformers; print("rehearsal: python", sys.version.split()[0],
  "torch", torch.__version__, "transformers", transformers.__version__)'
lay() {  # lay I DIR: what call I brings: the travelling files and transfer I
  mkdir -p "$2/.gpu_bundle"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
     | tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$2"
  cp -r "$bundle/transfer-$1" "$2/.gpu_bundle/"
}
n=$(find "$bundle" -maxdepth 1 -name 'transfer-*' | wc -l)
[ "$n" -ge 2 ] || { echo "no bundle in $bundle: bash scripts/gpu_bundle.sh" >&2; exit 1; }
for i in $(seq 1 $((n - 1))); do
  echo "== call $i: transfer $i"
  lay "$i" "$work/call-$i"
  (cd "$work/call-$i" && bash scripts/gpu_check.sh store)
done
echo "== call $n: transfer $n and the check"
lay "$n" "$work/call-$n"
cd "$work/call-$n"
GPU_CHECK_DRY=1 bash scripts/gpu_check.sh run "$out"
