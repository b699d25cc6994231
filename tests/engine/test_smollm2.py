"""Integration on the real bundled SmolLM2-135M-Instruct (fp32, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.fidelity import kl_divergence
from engine.runtime.model import Batch

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent.parent / "data" / "hotpotqa_5.jsonl"
PREFIX = "You are a helpful assistant. Answer the question from the passages, briefly."


def test_bundled_model_is_smollm2(smollm2_engine):
    s = smollm2_engine.model.spec
    assert (s.num_layers, s.num_heads, s.num_kv_heads, s.head_dim) == (30, 9, 3, 64)
    assert smollm2_engine.model.bytes_per_token == 2 * 30 * 3 * 64 * 4


@torch.inference_mode()
def test_greedy_answer_equals_hf_generate(smollm2_engine):
    engine = smollm2_engine
    key = engine.compile("The Eiffel Tower is in Paris. It was finished in 1889.")
    r = engine.run("", [key], "In which city is the Eiffel Tower?", "full_recompute",
                   max_new_tokens=16)
    ids = torch.tensor(r.layout.token_ids)[None]
    hf = engine.model.hf_model.generate(ids, max_new_tokens=16, do_sample=False)
    hf_ids = [t for t in hf[0, ids.shape[1]:].tolist() if t != engine.tokenizer.eos_token_id]
    assert list(r.token_ids) == hf_ids[: len(r.token_ids)] and len(hf_ids) == len(r.token_ids)
    assert "Paris" in r.text


@torch.inference_mode()
def test_top1_at_every_position_of_200_tokens(smollm2_engine):
    m = smollm2_engine.model
    text = " ".join(json.loads(DATA.read_text().splitlines()[0])["chunks"])
    ids = torch.tensor(m.tokenizer(text).input_ids[:200])
    ref = m.hf_model(ids[None]).logits[0]
    kv = m.new_kv(200)
    ours = m.logits(m.forward(m.embed(ids), Batch.run(0, 200, m.device), kv).h)
    assert torch.equal(ref.argmax(-1), ours.argmax(-1)), "top-1 differs at some position"
    assert (ref - ours).abs().max().item() <= 1e-3


def test_legolink_is_closer_to_full_recompute_than_naive(smollm2_engine):
    engine, kls = smollm2_engine, {"naive": [], "legolink": []}
    for line in DATA.read_text().splitlines():
        ex = json.loads(line)
        keys = [engine.compile(c) for c in ex["chunks"]]
        full = engine.run(PREFIX, keys, ex["question"], "full_recompute", max_new_tokens=1)
        for algo in kls:
            r = engine.run(PREFIX, keys, ex["question"], algo, recompute_k=16, max_new_tokens=1)
            kls[algo].append(kl_divergence(full.first_token_logprobs, r.first_token_logprobs))
            if algo == "legolink":
                chunks = r.layout.chunks
                num_new = r.num_prompt_tokens - sum(len(c.token_ids) for c in chunks)
                expected = sum(min(16, len(c.token_ids)) for c in chunks if c.start) + num_new
                assert r.num_recomputed == expected
    naive, lego = (sum(v) / len(v) for v in (kls["naive"], kls["legolink"]))
    assert lego < naive, f"mean first-token KL: legolink {lego:.4f} >= naive {naive:.4f}"
