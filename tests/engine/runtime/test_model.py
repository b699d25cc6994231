"""Our forward reproduces the Hugging Face forward, in one pass, in parts, and out of order."""

from __future__ import annotations

import pytest
import torch

from engine.config import EngineConfig
from engine.engine import load_model
from engine.runtime.model import Batch, Model
from tests.conftest import make_tiny_model, tiny_hf_config

FAMILIES = ["llama", "llama3", "mistral", "qwen2", "qwen3"]
TEXT = "The quick brown fox jumps over the lazy dog. Then it sleeps under a tree, dreaming."


def _load(path, tmp_path) -> Model:
    return load_model(EngineConfig(model=str(path), device="cpu", dtype="float32",
                                   cache_dir=str(tmp_path / "cache")))


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, tmp_path_factory) -> Model:
    d = make_tiny_model(tmp_path_factory.mktemp(request.param), request.param)
    return _load(d, tmp_path_factory.mktemp("c"))


def _ids(model: Model) -> torch.Tensor:
    return torch.tensor(model.tokenizer(TEXT).input_ids)


@torch.inference_mode()
def _full_logits(model: Model, ids: torch.Tensor) -> torch.Tensor:
    n = len(ids)
    kv = model.new_kv(n)
    return model.logits(model.forward(model.embed(ids), Batch.run(0, n, model.device), kv).h)


@torch.inference_mode()
def test_full_forward_equals_hf(family_model):
    ids = _ids(family_model)
    ref = family_model.hf_model(ids[None]).logits[0]
    ours = _full_logits(family_model, ids)
    diff = (ref - ours).abs().max().item()
    assert diff <= 1e-4, f"{family_model.family}: max |logit diff| {diff} > 1e-4"


@torch.inference_mode()
def test_greedy_20_tokens_equal_hf_generate(family_model):
    m = family_model
    ids = _ids(m)[:40]
    hf = m.hf_model.generate(ids[None], max_new_tokens=20, do_sample=False, eos_token_id=None,
                             pad_token_id=0)[0, len(ids):].tolist()
    n, ours = len(ids), []
    kv = m.new_kv(n + 20)
    h = m.forward(m.embed(ids), Batch.run(0, n, m.device), kv).h
    for step in range(20):
        token = int(m.logits(h[-1:])[0].argmax())
        ours.append(token)
        h = m.forward(m.embed(torch.tensor([token])), Batch.run(n + step, 1, m.device), kv).h
    assert ours == hf, f"{m.family}: greedy tokens differ from HF generate"


@torch.inference_mode()
def test_two_parts_and_out_of_order_equal_hf(family_model):
    m = family_model
    ids = _ids(m)
    n, a = len(ids), len(ids) // 3
    ref = m.hf_model(ids[None]).logits[0]
    kv = m.new_kv(n)
    m.forward(m.embed(ids[:a]), Batch.run(0, a, m.device), kv)  # the prefix first
    perm = torch.randperm(n - a, generator=torch.Generator().manual_seed(1)) + a
    batch = Batch.of(perm, n, m.device)
    assert batch.run_start is None, "a shuffled set is not a causal run"
    out = m.logits(m.forward(m.embed(ids[perm]), batch, kv).h)  # the rest, shuffled
    diff = (ref[perm] - out).abs().max().item()
    assert diff <= 1e-4, f"{m.family}: two-part, out-of-order forward differs by {diff}"


@pytest.mark.parametrize("overrides, named", [
    ({"family": "gpt2"}, "gpt2"),
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                          "original_max_position_embeddings": 64}}, "yarn"),
    ({"hidden_act": "gelu"}, "gelu"),
    ({"family": "qwen2", "use_sliding_window": True}, "use_sliding_window"),
])
def test_unsupported_config_refused_at_load(overrides, named, tmp_path):
    from engine.runtime.model import check_supported
    overrides = dict(overrides)
    family = overrides.pop("family", "llama")
    if family == "gpt2":
        from transformers import AutoConfig
        cfg = AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2)
    else:
        cfg = tiny_hf_config(family, **overrides)
    with pytest.raises(ValueError, match=named):
        check_supported(cfg)


def test_unsupported_model_directory_refused_by_loader(tmp_path):
    d = make_tiny_model(tmp_path / "m", "llama", hidden_act="gelu")
    with pytest.raises(ValueError, match="unsupported activation 'gelu'"):
        _load(d, tmp_path)


def test_missing_model_gets_a_clear_message(tmp_path):
    with pytest.raises(RuntimeError, match="neither an existing path nor a hub id"):
        _load(tmp_path / "nope", tmp_path)
    with pytest.raises(RuntimeError, match=r"neither config\.json nor a \.gguf"):
        _load(tmp_path, tmp_path)


def test_bytes_per_token_is_exact(family_model):
    s = family_model.spec
    assert family_model.bytes_per_token == 2 * s.num_layers * s.num_kv_heads * s.head_dim * 4
    kv = family_model.new_kv(7)
    assert kv.k.nbytes + kv.v.nbytes == 7 * family_model.bytes_per_token


def test_config_validates():
    with pytest.raises(ValueError, match="max_new_tokens must be > 0"):
        EngineConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match="dtype"):
        EngineConfig(dtype="int8")
    cfg = EngineConfig(device="auto", dtype="auto")
    assert (cfg.device, cfg.dtype) in {("cpu", "float32"), ("cuda", "bfloat16")}
