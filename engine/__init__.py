"""EPIC Lab engine: position-independent caching of LLM KV caches (compile once, link anywhere)."""

from engine.config import EngineConfig
from engine.engine import Engine, load_model
from engine.request import AlgorithmSpec, Request

__all__ = ["AlgorithmSpec", "Engine", "EngineConfig", "Request", "load_model"]
