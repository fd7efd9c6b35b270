"""The text path: frozen description embeddings → the tokens, prototypes and AU queries the
model reads, with nothing per-AU and free in between.

With N = 12 AUs, anything per-AU and trainable between the descriptions and what they control (a
pooling query per AU, a big MLP that can place 12 clusters anywhere) lets the descriptions act as
AU identifiers whatever they say. Here every AU goes through the same maps:

- ``TextProjector``: one shared low-rank linear map (D_t → r → d, then LayerNorm) for every
  description; an AU's prototype is the projection of the mean of its descriptions' unit
  embeddings (no per-AU pooling query);
- AU queries for the visual pooling and the DDCA/CDCA queries are derived from the prototypes by
  shared maps (in ``hiva.model.graph`` / ``hiva.model.attention``).

Swapping two AUs' descriptions (and their per-AU logit biases) swaps their logits exactly; the
tests hold it to that. ``text_mode learned`` feeds free per-AU vectors through the same path: the
no-language control.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of N×M×D where ``mask`` (N×M, True = real row) says which rows count."""
    if mask is None:
        return x.mean(1)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def centre(unit: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """N×M×D unit rows minus the mean of all real rows (every AU's: nothing per-AU)."""
    flat = unit.reshape(1, -1, unit.shape[-1])
    return unit - masked_mean(flat, None if mask is None else mask.reshape(1, -1))


class TextProjector(nn.Module):
    """N×M×D_t description embeddings (+ N×M mask) → tokens N×M×d and prototypes N×d.

    One projection for all AUs, of rank ``rank``: e ↦ LN(B·A·ê) with ê the unit embedding. The
    prototype of AU i is the same map applied to the unit mean of its descriptions.

    ``center``: first subtract the mean of all the given descriptions (every AU's, so nothing
    per-AU) and re-normalise. Sentence embeddings of face descriptions share a large common
    direction (on the demo corpus two AUs' prototypes have cosine 0.69 on average); centring
    leaves what tells the AUs apart."""

    def __init__(self, text_dim: int, d: int, rank: int, dropout: float, center: bool = False):
        super().__init__()
        self.center = center
        self.down = nn.Linear(text_dim, rank, bias=False)
        self.up = nn.Linear(rank, d)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d)

    def project(self, emb: torch.Tensor) -> torch.Tensor:
        """Any ...×D_t embeddings → ...×d tokens (unit-normalised first, as the bank stores)."""
        return self.norm(self.up(self.drop(self.down(F.normalize(emb, dim=-1)))))

    def forward(self, text: torch.Tensor, mask: torch.Tensor | None):
        unit = F.normalize(text, dim=-1)
        if self.center:
            unit = centre(unit, mask)
        n, m, dt = unit.shape
        mean = masked_mean(F.normalize(unit, dim=-1), mask)
        # The N·M descriptions and the N means through one projection call, not two.
        both = self.project(torch.cat([unit.reshape(n * m, dt), mean]))
        return both[:n * m].unflatten(0, (n, m)), both[n * m:]


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of attention rows ``weights`` …×M; padded entries (weight 0) add nothing."""
    w = weights.float().clamp_min(1e-12)
    return -(weights.float() * w.log()).sum(-1)
