"""The optional AU intensity head (``model.intensity``): per AU, a FACS intensity on the 0-5
scale from the same per-AU features the occurrence head reads (HiVA's final visual AU nodes,
ME-GraphAU's node features), and its training loss.

regression: ŷ_i = 5·σ(<w_i, u_i> + c_i); loss: the mean squared error of ŷ/5 against y/5 (the
    scale's range counts 1, so the term sits beside the occurrence loss at weight 1).
ordinal (CORAL, Cao et al. 2020): one projection per AU and five thresholds,
    P(y_i > k) = σ(<w_i, u_i> + c_ik) for k = 0..4; ŷ_i = Σ_k P(y_i > k) (the expected intensity,
    in [0, 5]); loss: the mean binary cross-entropy of each threshold against the soft target
    clamp(y − k, 0, 1), which is 1[y > k] for whole-number codes (DISFA, BP4D) and keeps
    Σ_k target_k = y for the synthetic set's fractional intensities.

Unknown intensities (NaN) are masked out of the loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hiva.model.config import INTENSITY_MAX


class IntensityHead(nn.Module):
    """``head(u)`` → (intensity B×N in [0, 5], raw: B×N regression logits or B×N×5 ordinal
    threshold logits). ``kind``: regression | ordinal."""

    def __init__(self, num_aus: int, d: int, kind: str):
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.randn(num_aus, d) / math.sqrt(d))
        levels = INTENSITY_MAX if kind == "ordinal" else 1
        # Thresholds start ordered (CORAL's rank consistency holds for any ordered biases: the
        # projection is shared across thresholds), regression at the scale's middle.
        start = torch.linspace(1.0, -1.0, levels) if levels > 1 else torch.zeros(1)
        self.bias = nn.Parameter(start.repeat(num_aus, 1))

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (u.float() * self.weight).sum(-1, keepdim=True) + self.bias  # B×N×levels
        if self.kind == "ordinal":
            return torch.sigmoid(z).sum(-1), z
        z = z.squeeze(-1)
        return INTENSITY_MAX * torch.sigmoid(z), z


def intensity_loss(kind: str, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The head's loss against ``target`` (B×N, 0-5, NaN = unknown: left out), averaged over
    the known entries (0, with the graph kept, when none is known)."""
    known = ~torch.isnan(target)
    y = torch.where(known, target.float(), torch.zeros_like(target, dtype=torch.float32))
    y = y.clamp(0.0, float(INTENSITY_MAX))
    raw = raw.float()
    m = known.to(raw.dtype)
    if kind == "ordinal":
        k = torch.arange(INTENSITY_MAX, device=raw.device, dtype=raw.dtype)
        soft = (y.unsqueeze(-1) - k).clamp(0.0, 1.0)  # B×N×5
        per = F.binary_cross_entropy_with_logits(raw, soft, reduction="none").mean(-1)
    else:
        per = (torch.sigmoid(raw) - y / INTENSITY_MAX) ** 2
    return (per * m).sum() / m.sum().clamp_min(1.0)
