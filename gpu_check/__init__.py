"""The GPU check: the engine's correctness and speed on a CUDA machine without network.

Built here into a bundle that fits the GPU machine's transfers (bundle.py, parts.py), run there
as a few budgeted steps (run.py: forward against Hugging Face's, the link invariants, fidelity
in bf16 beside fp32, the speed sweep), summarised as Markdown tables (summary.py); figures are
drawn afterwards, here, from its JSON (figures.py). Nothing here imports Plotly, pypdf, Rouge
or Gradio, except figures.py, which never runs on the GPU machine.
"""

__all__: list[str] = []
