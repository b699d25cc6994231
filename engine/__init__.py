"""EPIC Lab engine: position-independent caching of LLM KV caches (compile once, link anywhere)."""

from engine.config import EngineConfig
from engine.engine import Engine

__all__ = ["Engine", "EngineConfig"]
