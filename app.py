"""EPIC Lab on Hugging Face Spaces (or locally: `python app.py`).

Loads the one shared Engine (EPIC_MODEL picks the model; the bundled SmolLM2 by default),
compiles the example documents, builds the UI and launches it with the queue. Host and port
come from GRADIO_SERVER_NAME and GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import logging

from app.examples import compile_examples
from app.ui import build_ui, launch
from engine import Engine, EngineConfig

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

engine = Engine(EngineConfig())
compile_examples(engine)
demo = build_ui(engine)

if __name__ == "__main__":
    launch(demo)
