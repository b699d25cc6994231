"""The check's models: SmolLM2 from the bundle's GGUF, tiny random Llama / Qwen2 / Mistral,
and a randomly initialised model of Llama-3-8B's shape, all with SmolLM2's tokenizer files.

The tokenizer always comes from the bundle's files, never from the GGUF: transformers 5.17 (the
GPU machine's) reads SmolLM2's GGUF tokenizer with `<|im_start|>` as its EOS where 5.24 reads
`<|im_end|>`; the files read the same under both, so every run sees one tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine import BUNDLED_ID, Engine, EngineConfig, Model, load_model

TINY_FAMILIES = ("llama", "qwen2", "mistral")
# Llama-3-8B's shape; the vocabulary is SmolLM2's tokenizer's (the weights are random anyway).
LLAMA_8B_SHAPE = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=8)
DRY_8B_SHAPE = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2)


@dataclass(frozen=True)
class Setup:
    """Where the check runs and what it reads, as the runner passes it to every step."""

    device: str  # "cuda", or "cpu" in the dry run
    weights: Path | None  # the joined SmolLM2 GGUF; None when it could not be joined
    tokenizer_dir: Path
    data: Path  # hotpotqa examples, the shared schema
    cache_dir: Path  # the engine's converted-model cache
    dry: bool  # small shapes: the CPU rehearsal

    @property
    def speed_dtype(self) -> str:
        """What the speed steps time in: bf16 on the GPU; fp32 in the dry run, since bf16 is
        several times slower than fp32 on this CPU (correctness and fidelity run both)."""
        return "float32" if self.dry else "bfloat16"

    def tokenizer(self):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(self.tokenizer_dir))


def smollm2(setup: Setup, dtype: str, tokenizer=None) -> Engine:
    """An engine on the bundle's SmolLM2 (converted once, then read from the cache), named as
    the bundled model is: the bundle checked that its GGUF is that file, byte for byte."""
    if setup.weights is None:
        raise RuntimeError("SmolLM2's weights are not here (see the weights line above)")
    config = EngineConfig(model=str(setup.weights), device=setup.device, dtype=dtype,
                          cache_dir=str(setup.cache_dir))
    loaded = load_model(config)
    model = Model(loaded.hf_model, tokenizer or setup.tokenizer(), BUNDLED_ID)
    return Engine(config, model=model)


def tiny_config(family: str, tokenizer, num_layers: int = 4):
    """A tiny random config of one family (4 layers, so CacheBlend's selective layers exist)."""
    from transformers import AutoConfig
    base = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=4096, rms_norm_eps=1e-6, tie_word_embeddings=False,
                eos_token_id=tokenizer.eos_token_id)
    if family == "qwen2":
        base["use_sliding_window"] = False
    if family == "mistral":
        base["sliding_window"] = None
    return AutoConfig.for_model(family, **base)


def tiny_model(family: str, tokenizer, device: str, dtype: torch.dtype, seed: int = 0) -> Model:
    """A tiny random model of a family, the same weights for every dtype (made in fp32)."""
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(tiny_config(family, tokenizer))
    with torch.no_grad():  # random init attends near-uniformly; larger weights show sinks
        for p in hf.parameters():
            if p.dim() == 2:
                p.mul_(3.0)
    hf = hf.to(device=device, dtype=dtype).requires_grad_(False)
    return Model(hf, tokenizer, f"tiny random {family}")


def tiny_engine(family: str, setup: Setup, dtype: str, tokenizer) -> Engine:
    config = EngineConfig(model=f"tiny random {family}", device=setup.device, dtype=dtype,
                          cache_dir=str(setup.cache_dir))
    return Engine(config, model=tiny_model(family, tokenizer, setup.device, config.torch_dtype))


def random_llama_8b(setup: Setup, tokenizer) -> Engine:
    """A randomly initialised model of Llama-3-8B's shape (tiny in the dry run), in the speed
    dtype, made on the device directly: its 16 GB of bf16 never pass through the CPU."""
    from transformers import AutoModelForCausalLM, LlamaConfig
    shape = DRY_8B_SHAPE if setup.dry else LLAMA_8B_SHAPE
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
                         eos_token_id=tokenizer.eos_token_id, **shape)
    torch.manual_seed(0)
    with torch.device(setup.device):
        hf = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, setup.speed_dtype))
    hf.requires_grad_(False)
    model_id = "random Llama-3-8B shape" + (" (dry run: tiny)" if setup.dry else "")
    return Engine(EngineConfig(model=model_id, device=setup.device, dtype=setup.speed_dtype,
                               cache_dir=str(setup.cache_dir)),
                  model=Model(hf, tokenizer, model_id))
