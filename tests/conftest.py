"""Shared fixtures: tiny random Llama-family models built here, saved to a temp directory.

Nothing downloads: the tokenizer is a byte-level BPE with no merges (one token per byte),
the weights are random with a fixed seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Tests choose their shared store themselves: one set in the shell would join their stores.
os.environ.pop("EPIC_STORE_URL", None)

EOS, BOS = "<eos>", "<bos>"


def byte_tokenizer(add_bos: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    vocab[EOS], vocab[BOS] = 256, 257
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS, BOS])
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A",
                                                           special_tokens=[(BOS, 257)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=BOS)


def tiny_hf_config(family: str = "llama", **overrides):
    from transformers import AutoConfig

    base = dict(vocab_size=260, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rms_norm_eps=1e-6, tie_word_embeddings=False, eos_token_id=256, bos_token_id=257)
    if family == "llama3":
        family = "llama"
        base["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 64}
    if family == "qwen2":
        base["use_sliding_window"] = False
    if family == "mistral":
        base["sliding_window"] = None
    base.update(overrides)
    return AutoConfig.for_model(family, **base)


def make_tiny_model(directory: Path, family: str = "llama", add_bos: bool = False, seed: int = 0,
                    **overrides) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_hf_config(family, **overrides))
    # Random init gives near-uniform attention; larger weights make sinks and errors visible.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(3.0)
    model.save_pretrained(directory)
    byte_tokenizer(add_bos).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_engine_config(tiny_model_dir, tmp_path_factory):
    from engine.config import EngineConfig

    return EngineConfig(model=str(tiny_model_dir), device="cpu", dtype="float32",
                        cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny4_model_dir(tmp_path_factory) -> Path:
    """Four layers, so CacheBlend's selective layers (2 and 3) exist."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny4-llama"), num_hidden_layers=4)


@pytest.fixture()
def tiny4_engine(tiny4_model_dir, tmp_path):
    from engine import Engine, EngineConfig

    return Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                               cache_dir=str(tmp_path / "cache")))


@pytest.fixture(scope="session")
def smollm2_engine():
    """The real bundled model (fp32, CPU), loaded once per test session."""
    from engine import Engine, EngineConfig

    return Engine(EngineConfig(model="bundled:smollm2", device="cpu", dtype="float32"))
