"""HiVA's training loss: weighted asymmetric loss (or weighted BCE) over the known labels, plus
a vision–language contrastive alignment term. Per-AU weights come from training occurrence rates.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hiva.model.archs import build_arch_loss
from hiva.model.config import ModelConfig
from hiva.model.intensity import intensity_loss
from hiva.regions import map_kl


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
    align: per-AU contrast of frames against the pure text prototypes (``alignment``).
    map_kl (map_prior kl/both): KL(map ‖ region prior), the mean of the DDCA and pooling maps'
    terms, over frames and AUs with a region (``hiva.regions.map_kl``).
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

    def alignment(self, visual, prototypes, targets, mask) -> torch.Tensor:
        """Per AU, contrast across the batch against the pure text prototype p_i (before any
        image conditioning). For each frame b with AU i on (and labelled), with s = cos/τ:

            −log exp s(z_v,bi, p_i) / [exp s(z_v,bi, p_i) + Σ_{b' off} exp s(z_v,b'i, p_i)
                                       + Σ_{j≠i} exp s(z_v,bi, p_j)]

        Negatives are the frames where AU i is labelled off and the other AUs' prototypes. A
        node that only says "I am AU i" scores every frame alike, so the loss stays near
        log(1 + #off frames) unless z_v,i tells on frames from off frames: no identity shortcut,
        and it needs labels (shuffle them across frames and it stays high). Frames and AUs with
        unknown labels (masked, e.g. zero-shot AUs) are neither positives nor negatives."""
        zv = F.normalize(visual.float(), dim=-1)  # B×N×d
        p = F.normalize(prototypes.float(), dim=-1)  # N×d
        sim = torch.einsum("bid,jd->bij", zv, p) / self.cfg.align_temperature  # B×N×N
        n = sim.shape[-1]
        eye = torch.eye(n, dtype=torch.bool, device=sim.device)
        own = sim.diagonal(dim1=1, dim2=2)  # B×N: s(z_v,bi, p_i)
        known = mask.to(torch.bool)
        pos = (targets > 0.5) & known
        neg = (targets <= 0.5) & known
        off = -1e4  # exp(off) == 0 in fp32; finite, so an empty set gives no NaN gradient
        neg_frames = torch.logsumexp(own.masked_fill(~neg, off), dim=0)  # N
        other_aus = torch.logsumexp(sim.masked_fill(eye, off), dim=-1)  # B×N
        denom = torch.logsumexp(
            torch.stack([own, neg_frames.expand_as(own), other_aus]), dim=0)
        per = (denom - own) * pos.to(own.dtype)
        # Mean over positives without a data-dependent branch (no device sync; 0 with the graph
        # kept connected for DDP when a batch has none).
        return per.sum() / pos.sum().clamp_min(1).to(own.dtype)

    def terms(self, out, targets, mask) -> list[tuple[str, torch.Tensor, float]]:
        """(name, value, weight) of each loss term; the total is their weighted sum."""
        got = [("cls", self.classification(out.logits, targets, mask), 1.0)]
        if self.cfg.align_weight > 0:
            got.append(("align", self.alignment(out.visual, out.prototypes, targets, mask),
                        self.cfg.align_weight))
        if self.cfg.map_prior in ("kl", "both") and out.prior_frac is not None:
            kl = map_kl(out.activation_maps, out.prior_frac, self.cfg.map_prior_floor)
            if out.pooling_maps is not out.activation_maps:
                kl = (kl + map_kl(out.pooling_maps, out.prior_frac,
                                  self.cfg.map_prior_floor)) / 2
            got.append(("map_kl", kl, self.cfg.map_prior_weight))
        return got

    def __call__(self, out, targets: torch.Tensor, mask: torch.Tensor | None = None,
                 intensity: torch.Tensor | None = None):
        """``intensity``: B×N FACS intensities (NaN = unknown) for a model with the intensity
        head (``model.intensity``); their term, ``intensity``, weighs ``intensity_weight``."""
        if mask is None:
            mask = torch.ones_like(targets, dtype=torch.bool)
        terms = self.terms(out, targets, mask.to(torch.bool))
        if intensity is not None and out.intensity_raw is not None:
            terms.append(("intensity", intensity_loss(self.cfg.intensity, out.intensity_raw,
                                                      intensity.to(out.intensity_raw.device)),
                          self.cfg.intensity_weight))
        total = sum(weight * value for _, value, weight in terms)  # cls first, weight 1
        parts = {name: value for name, value, _ in terms}
        parts["total"] = total
        return total, {k: v.detach() for k, v in parts.items()}


class GraphAULoss(HiVALoss):
    """ME-GraphAU's training loss (``arch: megraphau``), on its [0, 1] outputs directly:

    weighted asymmetric loss −w_i·[y·log p + (1−y)·p̄·log(1−p)] (p clamped at 1e-8, p̄ = p
    detached), averaged over known labels; stage 2 adds ``edge_weight`` × the cross-entropy of
    each AU pair's co-occurrence class (2·y_i + y_j for the edge i·N + j, their relation labels),
    averaged over pairs whose two labels are known."""

    eps = 1e-8

    def classification(self, probs, targets, mask) -> torch.Tensor:
        p = probs.float()
        y = targets.float()
        pos = y * torch.log(p.clamp(min=self.eps))
        neg = (1 - y) * torch.log((1 - p).clamp(min=self.eps)) * p.detach()
        per = -(pos + neg) * self.weights.to(p.device)
        m = mask.to(per.dtype)
        return (per * m).sum() / m.sum().clamp_min(1.0)

    @staticmethod
    def edge(edge_logits, targets, mask) -> torch.Tensor:
        b, n = targets.shape
        y = (targets > 0.5).long()
        cls = (2 * y.unsqueeze(2) + y.unsqueeze(1)).reshape(b, n * n)  # edge i·N + j
        known = (mask.unsqueeze(2) & mask.unsqueeze(1)).reshape(b, n * n).to(torch.float32)
        ce = F.cross_entropy(edge_logits.float().reshape(b * n * n, 4), cls.reshape(-1),
                             reduction="none").reshape(b, n * n)
        return (ce * known).sum() / known.sum().clamp_min(1.0)

    def terms(self, out, targets, mask) -> list[tuple[str, torch.Tensor, float]]:
        got = [("cls", self.classification(out.probs, targets, mask), 1.0)]
        if out.edge_logits is not None and self.cfg.edge_weight > 0:
            got.append(("edge", self.edge(out.edge_logits, targets, mask), self.cfg.edge_weight))
        return got


def build_loss(cfg: ModelConfig, au_weights: torch.Tensor | None = None):
    """The training loss of ``cfg.arch`` (``hiva.model.archs``: ``HiVALoss`` for HiVA, ME-GraphAU's
    ``GraphAULoss``)."""
    return build_arch_loss(cfg, au_weights)
