"""EPIC Lab on Hugging Face Spaces (or locally: `python app.py`).

Loads the one shared Engine (EPIC_MODEL picks the model; the bundled SmolLM2 by default),
opens the lab (the example documents' KV from the cache beside the model, compiled and kept
there on the first start; the guided story's results likewise), builds the UI and launches it
with the queue, and unless EPIC_MCP=0 the agents' MCP tools (/gradio_api/mcp/). The app's
limits come from EPIC_* variables (app/limits.py); EPIC_OPERATOR=1 turns on store-wide actions.
Host and port come from GRADIO_SERVER_NAME and GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import logging
import os

from app.examples import save_story
from app.lab import Lab
from app.mcp_tools import enabled
from app.memory import return_freed_memory
from app.start import first_story
from app.ui import build_ui, launch
from engine import Engine, EngineConfig

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

return_freed_memory()  # before the model's weights and the first requests are allocated
engine = Engine(EngineConfig())
lab = Lab.open(engine)
if lab.story is None:  # the first start: the first page shows the story's results
    lab.story = first_story(lab)
    save_story(engine, lab.story)
demo = build_ui(lab, mcp=enabled(dict(os.environ)))  # and an MCP server unless EPIC_MCP=0

if __name__ == "__main__":
    launch(demo, lab)
