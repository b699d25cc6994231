"""Attention inspection: what the answer's tokens attend to, over every context position.

SDPA returns no weights, so the few query rows shown (the last prompt token and the
generated tokens) are run once more over the request's final KV with scores captured:
O(num_queries x N) per layer, cheap on a long prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.generate import RunResult
from engine.link import LinkResult
from engine.runtime import Batch, Model


@dataclass(frozen=True)
class InspectResult:
    """Attention of a few query rows over the linked context.

    # scores: [num_layers, num_heads, num_queries, num_keys] fp32, scaled QK^T, -inf where masked
    """

    run: RunResult
    scores: torch.Tensor
    query_positions: tuple[int, ...]  # global positions of the rows (last prompt token first)
    query_tokens: tuple[str, ...]

    def weights(self) -> torch.Tensor:
        """Softmax attention weights in fp32, same shape as scores (0 where masked)."""
        return torch.softmax(self.scores.float(), dim=-1)

    def sink_mass(self, first_k: int, layer: int | None = None,
                  head: int | None = None) -> list[float]:
        """Mean attention mass on the first `first_k` tokens of each chunk (one value per
        chunk), averaged over the query rows and the chosen layer and head (all when None)."""
        if first_k < 1:
            raise ValueError(f"k must be at least 1, got {first_k}")
        num_layers, num_heads = self.scores.shape[:2]
        if layer is not None and not 0 <= layer < num_layers:
            raise ValueError(f"layer must be in [0, {num_layers - 1}], got {layer}")
        if head is not None and not 0 <= head < num_heads:
            raise ValueError(f"head must be in [0, {num_heads - 1}], got {head}")
        w = self.weights()
        w = w if layer is None else w[layer:layer + 1]
        w = w if head is None else w[:, head:head + 1]
        per_key = w.mean(dim=(0, 1, 2))  # [num_keys]
        return [float(per_key[s.start:s.start + min(first_k, len(s.token_ids))].sum())
                for s in self.run.layout.chunks]


@torch.inference_mode()
def attention_scores(model: Model, link: LinkResult, run: RunResult) -> InspectResult:
    """Recompute the query rows over `link.kv` (filled by decoding) and capture their scores."""
    n = link.layout.num_tokens
    fed = list(run.token_ids[:-1]) if run.stop_reason == "length" else list(run.token_ids)
    ids = [link.layout.token_ids[-1], *fed]
    batch = Batch.run(n - 1, len(ids), model.device, capture_scores=True)
    out = model.forward(model.embed(torch.tensor(ids, device=model.device)), batch, link.kv)
    tokens = tuple(model.tokenizer.decode([t]) for t in ids)
    return InspectResult(run, out.scores.cpu(), tuple(range(n - 1, n + len(fed))), tokens)
