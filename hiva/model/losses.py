"""HiVA's training loss: weighted asymmetric loss (or weighted BCE) over the known labels, plus
a vision–language InfoNCE alignment term. Per-AU weights come from training occurrence rates.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hiva.model.config import ModelConfig


def au_weights_from_rates(rates) -> torch.Tensor:
    """w_i ∝ 1/rate_i, normalised to sum N. A rate of 0 (AU never seen) is floored at the
    smallest positive rate's half so it gets the largest weight instead of infinity."""
    r = np.asarray(rates, dtype=np.float64)
    pos = r[r > 0]
    floor = pos.min() / 2 if pos.size else 1.0
    inv = 1.0 / np.where(r > 0, r, floor)
    w = inv * len(r) / inv.sum()
    return torch.tensor(w, dtype=torch.float32)


class HiVALoss:
    """``loss(out, targets, mask) -> (total, {"cls", "align", "total"})``.

    asl: −w_i·[y·log p + (1−y)·p̄·log(1−p)], p̄ = p detached (ME-GraphAU's weighted ASL);
    bce: −w_i·[y·log p + (1−y)·log(1−p)]. Both averaged over entries whose mask is True.
    align: for each (sample, AU i) with a known positive label, cross-entropy of
    cos(z_v,i, z_t,j)/τ over the N prototypes j, target j = i.
    """

    def __init__(self, cfg: ModelConfig, au_weights: torch.Tensor | None = None):
        self.cfg = cfg
        n = cfg.num_aus
        self.weights = au_weights if au_weights is not None else torch.ones(n)
        if self.weights.shape != (n,):
            raise ValueError(f"au_weights must have shape ({n},), got {tuple(self.weights.shape)}")

    def classification(self, logits, targets, mask) -> torch.Tensor:
        x = logits.float()
        y = targets.float()
        log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
        if self.cfg.loss == "asl":
            neg = torch.sigmoid(x).detach() * log_q
        else:
            neg = log_q
        per = -(y * log_p + (1 - y) * neg) * self.weights.to(x.device)
        m = mask.to(per.dtype)
        return (per * m).sum() / m.sum().clamp_min(1.0)

    def alignment(self, visual, text_proto, targets, mask) -> torch.Tensor:
        zv = F.normalize(visual.float(), dim=-1)
        zt = F.normalize(text_proto.float(), dim=-1)
        if zt.dim() == 2:
            zt = zt.unsqueeze(0).expand(zv.shape[0], -1, -1)
        sim = torch.einsum("bid,bjd->bij", zv, zt) / self.cfg.align_temperature
        active = ((targets > 0.5) & mask).flatten().to(sim.dtype)
        n = sim.shape[-1]
        labels = torch.arange(n, device=sim.device).repeat(sim.shape[0])
        # Mean over the active (sample, AU) pairs without a data-dependent branch or index (no
        # device sync; 0 with the graph kept connected for DDP when none is active).
        ce = F.cross_entropy(sim.reshape(-1, n), labels, reduction="none")
        return (ce * active).sum() / active.sum().clamp_min(1.0)

    def __call__(self, out, targets: torch.Tensor, mask: torch.Tensor | None = None):
        if mask is None:
            mask = torch.ones_like(targets, dtype=torch.bool)
        mask = mask.to(torch.bool)
        cls = self.classification(out.logits, targets, mask)
        parts = {"cls": cls}
        total = cls
        if self.cfg.align_weight > 0:
            align = self.alignment(out.visual, out.text_proto, targets, mask)
            parts["align"] = align
            total = total + self.cfg.align_weight * align
        parts["total"] = total
        return total, {k: v.detach() for k, v in parts.items()}
