"""EPIC Lab engine: position-independent caching of LLM KV caches (compile once, link anywhere).

This is the public surface: `app/`, `bench/`, `visualize/` and other people's code import these
names from `engine` and nothing from its modules (tests/test_layout.py holds them to it).

    engine = Engine(EngineConfig())
    key = engine.compile("text of one chunk")
    out = engine.run(prefix="...", chunks=[key], question="...", algorithm="legolink-16")

Inside, arrows point down: the request layer (this folder's modules) over `link/` (the
algorithms) and `store/` (the chunks), both over `runtime/` (the model); the store knows no
model and the runtime neither algorithms nor store.
"""

from engine.config import EngineConfig
from engine.engine import Engine, load_model
from engine.fidelity import Fidelity, kl_divergence, measure
from engine.generate import RunResult, StreamPiece
from engine.inspection import InspectResult
from engine.link import (
    DEFAULT_ALGORITHMS,
    NAIVE,
    REFERENCE,
    AlgorithmSpec,
    CompileVariant,
    Counts,
    FloorTiming,
    Kind,
    Layout,
    LinkAlgorithm,
    LinkInput,
    LinkResult,
    Parameter,
    Segment,
    algorithm,
    algorithm_choices,
    algorithm_names,
    label_forms,
    parameters,
    parse_algorithms,
    real_number,
    register,
    split_label,
    users,
    whole_number,
)
from engine.prompt import (
    ContextLimitError,
    PromptPlan,
    chunk_token_ids,
    encode_user_text,
    template_parts,
)
from engine.request import Request
from engine.runtime import (
    BUNDLED_FILE,
    BUNDLED_ID,
    BUNDLED_PACKAGE,
    INSTALL_HINT,
    Batch,
    Model,
    now_ms,
)
from engine.store import (
    ChunkInfo,
    ChunkStore,
    SharedTier,
    StoreStats,
    chunk_titles,
    clean_title,
    title_of,
)

__all__ = [
    "BUNDLED_FILE",
    "BUNDLED_ID",
    "BUNDLED_PACKAGE",
    "DEFAULT_ALGORITHMS",
    "INSTALL_HINT",
    "NAIVE",
    "REFERENCE",
    "AlgorithmSpec",
    "Batch",
    "ChunkInfo",
    "ChunkStore",
    "CompileVariant",
    "ContextLimitError",
    "Counts",
    "Engine",
    "EngineConfig",
    "Fidelity",
    "FloorTiming",
    "InspectResult",
    "Kind",
    "Layout",
    "LinkAlgorithm",
    "LinkInput",
    "LinkResult",
    "Model",
    "Parameter",
    "PromptPlan",
    "Request",
    "RunResult",
    "Segment",
    "SharedTier",
    "StoreStats",
    "StreamPiece",
    "algorithm",
    "algorithm_choices",
    "algorithm_names",
    "chunk_titles",
    "chunk_token_ids",
    "clean_title",
    "encode_user_text",
    "kl_divergence",
    "label_forms",
    "load_model",
    "measure",
    "now_ms",
    "parameters",
    "parse_algorithms",
    "real_number",
    "register",
    "split_label",
    "template_parts",
    "title_of",
    "users",
    "whole_number",
]
