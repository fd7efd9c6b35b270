"""The HiVA network: images + per-AU description embeddings → AU logits and per-AU maps.

Paper's parts (Li et al., arXiv 2602.14425, abstract): language priors from LLM descriptions, an
AU-aware dynamic graph, DDCA, CDCA, the DDCA→CDCA hierarchy, activation maps. Everything concrete
below (layer shapes, pooling, top-k graph, heads) is our reading, written up in docs/model.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hiva.errors import HivaError
from hiva.model.attention import CDCA, DDCA
from hiva.model.backbone import make_backbone
from hiva.model.config import ModelConfig
from hiva.model.graph import AUQueryPooling, DynamicGraph
from hiva.model.intensity import IntensityHead
from hiva.model.language import TextProjector
from hiva.regions import disc_fractions, max_discs, region_prior
from hiva.text_regions import max_text_discs


@dataclass
class HiVAOutput:
    logits: torch.Tensor  # B×N
    probs: torch.Tensor  # B×N
    activation_maps: torch.Tensor  # B×N×P, DDCA text←vision attention (pooling maps if no DDCA)
    pooling_maps: torch.Tensor  # B×N×P, AU-query pooling attention
    map_size: tuple[int, int]  # (h, w), P = h*w
    visual: torch.Tensor  # B×N×d, final visual AU nodes z_v
    text_proto: torch.Tensor  # B×N×d, final AU text prototypes z_t (image-conditioned)
    prototypes: torch.Tensor  # N×d, pure text prototypes (before any image conditioning)
    text_attention: torch.Tensor | None  # B×N×M, DDCA vision←text weights over descriptions
    region_frac: torch.Tensor | None = None  # B×N×P, share of each cell in the AU's region
    prior_frac: torch.Tensor | None = None  # B×N×P, the region prior's cells (bias and KL)
    edge_logits: torch.Tensor | None = None  # B×N²×4, ME-GraphAU stage 2's edge classes
    side_probs: torch.Tensor | None = None  # B×2S, left/right outputs (OpenGraphAU side_aus)
    intensity: torch.Tensor | None = None  # B×N, FACS intensity 0-5 (model.intensity on)
    intensity_raw: torch.Tensor | None = None  # its logits (B×N, or B×N×5 ordinal): the loss


class Heads(nn.Module):
    """match: s·cos(z_v,i, z_t,i) + b_i (the AU's weight is its text prototype: the default);
    linear: <w_i, z_v,i> + c_i with a free w_i per AU; both: their sum (ablations)."""

    def __init__(self, num_aus: int, d: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind in ("match", "both"):
            self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
            self.match_bias = nn.Parameter(torch.zeros(num_aus))
        if kind in ("linear", "both"):
            self.weight = nn.Parameter(torch.randn(num_aus, d) / math.sqrt(d))
            self.bias = nn.Parameter(torch.zeros(num_aus))

    def forward(self, zv: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        logits = 0
        if self.kind in ("match", "both"):
            cos = F.cosine_similarity(zv, zt, dim=-1)
            logits = logits + self.logit_scale.clamp(max=math.log(100.0)).exp() * cos
            logits = logits + self.match_bias
        if self.kind in ("linear", "both"):
            logits = logits + (zv * self.weight).sum(-1) + self.bias
        return logits


class AUNet(nn.Module):
    """What every AU network of hiva offers the trainer and the predictor (HiVA, ME-GraphAU):
    ``cfg``, ``backbone`` (with ``mean``/``std``), a forward returning ``HiVAOutput``."""

    cfg: ModelConfig

    @property
    def input_size(self) -> int:
        return self.cfg.input_size

    def _build_backbone(self, cfg: ModelConfig) -> nn.Module:
        """``cfg.backbone`` with its weights; with ``cfg.freeze_backbone`` its parameters take
        no gradient (``param_groups`` leaves them out) and it stays in eval mode (``train``)."""
        backbone = make_backbone(cfg.backbone, cfg.pretrained, cfg.input_size,
                                 cfg.feature_stride)
        for name, v in (("pixel_mean", backbone.mean), ("pixel_std", backbone.std)):
            self.register_buffer(name, torch.tensor(v, dtype=torch.float32).view(-1, 1, 1),
                                 persistent=False)  # for ``pixels``; not saved with the weights
        if cfg.freeze_backbone:
            backbone.requires_grad_(False)
            backbone.eval()
        return backbone

    def train(self, mode: bool = True):
        """``nn.Module.train``, except that a frozen backbone stays in eval mode: its BatchNorm
        statistics never move, so features computed once (``hiva.train.feature_cache``) are
        the ones the backbone would give at every step."""
        super().train(mode)
        if self.cfg.freeze_backbone:
            self.backbone.eval()
        return self

    def pixels(self, images: torch.Tensor | None) -> torch.Tensor | None:
        """uint8 images (B×3×H×W in 0..255, as the trainer's loader sends them) scaled to 0..1
        and normalised for the backbone on their own device, by the operations the float
        transforms apply per image (``ToDtype`` then ``Normalize``: on the CPU the same
        numbers); float images, already normalised, as they are."""
        if images is None or images.dtype != torch.uint8:
            return images
        return images.to(torch.float32).mul_(1.0 / 255).sub_(self.pixel_mean).div_(self.pixel_std)

    def encode(self, images: torch.Tensor | None,
               features: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """(feature map B×C×h×w, input size in pixels): the backbone's output for ``images``,
        or ``features`` when given (that output, computed earlier: the backbone is skipped).
        The size is ``images``' width, or ``cfg.input_size`` when only features are given
        (the regions' pixels)."""
        if features is None:
            return self.backbone(self.pixels(images)), images.shape[-1]
        return features, (images.shape[-1] if images is not None else self.cfg.input_size)

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) the backbone's weights expect (Lite0: 0.5/0.5; others ImageNet)."""
        return self.backbone.mean, self.backbone.std

    def _build_intensity(self, cfg: ModelConfig, width: int) -> None:
        """The intensity head on per-AU features of ``width`` (``intensity_head``), built last
        and only with ``cfg.intensity`` on: off, the module, its weights and the random draws
        of every other part's initialisation are what they were without it."""
        if cfg.has_intensity:
            self.intensity_head = IntensityHead(cfg.num_aus, width, cfg.intensity)

    def intensity(self, u: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(intensity B×N in [0, 5], the head's logits) from the per-AU features ``u``
        (B×N×width), or (None, None) without the head."""
        if not self.cfg.has_intensity:
            return None, None
        return self.intensity_head(u)

    def param_counts(self) -> dict[str, int]:
        out = {name: sum(p.numel() for p in m.parameters()) for name, m in self.named_children()}
        out.update((name, p.numel()) for name, p in self.named_parameters(recurse=False))
        out["total"] = sum(p.numel() for p in self.parameters())
        return out

    def set_region_template(self, discs) -> None:
        """Regions of the average neutral face: the region prior of every frame but those
        trained with ``prior_regions`` (HiVA's bias and KL priors)."""

    def region_frac(self, regions, feat: torch.Tensor, size: int) -> torch.Tensor | None:
        """B×N×P share of each of ``feat``'s cells inside each AU's region (``regions``: B×N×C×3
        discs in input pixels of ``size``), or None: without regions, and in training, which
        has no use for them (they score the maps; the prior never reads them)."""
        if regions is None or self.training:
            return None
        regions = regions.to(device=feat.device, dtype=torch.float32, non_blocking=True)
        return disc_fractions(regions, size, tuple(feat.shape[-2:])).flatten(-2)


class HiVA(AUNet):
    """The design: docs/model.md. Submodules (the parts of ``param_counts``): backbone,
    proj, pool, graph, text, ddca, cdca, heads; a disabled switch leaves its part out entirely.
    ``learned_text`` (N×K×D_t) exists only in ``text_mode learned``; apart from it and the heads'
    per-AU biases (and the free weights of the linear/both heads) no parameter is per-AU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        n, d = cfg.num_aus, cfg.d_model
        self.backbone = self._build_backbone(cfg)
        self.proj = nn.Sequential(nn.Linear(self.backbone.num_features, d), nn.LayerNorm(d))
        self.pool = AUQueryPooling(d)
        self.graph = DynamicGraph(d, cfg.k, cfg.graph_layers) if cfg.graph else None
        self.text = TextProjector(cfg.text_width, d, cfg.text_rank, cfg.dropout,
                                  cfg.text_center)
        h, p = cfg.num_heads, cfg.dropout
        self.ddca = nn.ModuleList(DDCA(d, h, p) for _ in range(cfg.depth)) if cfg.ddca else None
        self.cdca = (
            nn.ModuleList(CDCA(d, h, p, cfg.ffn_mult) for _ in range(cfg.depth))
            if cfg.cdca else None
        )
        self.heads = Heads(n, d, cfg.head)
        if cfg.text_mode == "learned":
            bank = torch.randn(n, cfg.learned_tokens, cfg.text_width)
            self.learned_text = nn.Parameter(F.normalize(bank, dim=-1))
        if cfg.map_prior != "none":
            # The regions of the average neutral training face (N×C×3 discs in input pixels;
            # NaN = none yet), from landmarks that do not move with the AUs. The trainer fills
            # it (``set_region_template``). The bias prior reads it at evaluation, test and
            # predict alike, so it is saved with the weights; a KL prior only shapes training.
            c = max_discs(cfg.aus)
            if cfg.map_prior_source != "facs":  # regions read from text: their own disc count

                c = max(c, max_text_discs())
            self.register_buffer("region_template", torch.full((n, c, 3), float("nan")),
                                 persistent=self.uses_bias)
        self._build_intensity(cfg, d)

    @property
    def uses_bias(self) -> bool:
        return self.cfg.map_prior in ("bias", "both")

    def set_region_template(self, discs) -> None:
        """Store the average neutral face's regions (N×C'×3, input pixels; C' ≤ C: padded with
        NaN, no disc)."""
        if self.cfg.map_prior != "none":
            discs = torch.as_tensor(discs, dtype=torch.float32)
            self.region_template.fill_(float("nan"))
            self.region_template[:, :discs.shape[1]].copy_(discs)

    def prior_frac(self, prior_regions, feat: torch.Tensor, size: int) -> torch.Tensor | None:
        """B×N×P cells of the region prior, or None without a prior: each frame's
        ``prior_regions`` (AU-independent landmarks: a training frame's neutral face) where it
        has them, else the template. Never the frame's own drawn landmarks, which move with
        the AUs; at test the prior is the template alone, as in ``hiva predict``."""
        if self.cfg.map_prior == "none" or not (self.uses_bias or self.training):
            return None  # a KL prior only shapes training
        b, _, h, w = feat.shape
        src = disc_fractions(self.region_template, size, (h, w)).flatten(-2)
        src = src.unsqueeze(0).expand(b, -1, -1)
        if prior_regions is not None:
            own = disc_fractions(prior_regions.to(device=feat.device, dtype=torch.float32,
                                                  non_blocking=True), size, (h, w)).flatten(-2)
            src = torch.where(own.sum(-1, keepdim=True) > 0, own, src)
        return src

    def _check_text(self, text, text_mask):
        n, dt = self.cfg.num_aus, self.cfg.text_width
        if self.cfg.text_mode == "learned":
            return self.learned_text, None
        if text is None:
            raise HivaError(
                f"text_mode={self.cfg.text_mode!r} needs description embeddings (N×M×{dt}); "
                "pass the bank from hiva.textbank.load_text through hiva.model.text.sample_text"
            )
        if text.dim() != 3 or text.shape[0] != n or text.shape[-1] != dt:
            raise HivaError(
                f"text has shape {tuple(text.shape)} but the model needs ({n}, M, {dt}) "
                f"for AUs {self.cfg.aus}; embed with the same encoder and AU set"
            )
        if text_mask is not None and tuple(text_mask.shape) != tuple(text.shape[:2]):
            raise HivaError(f"text_mask {tuple(text_mask.shape)} must be {tuple(text.shape[:2])}")
        return text, text_mask

    def forward(
        self,
        images: torch.Tensor,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
        prior_regions: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> HiVAOutput:
        """``regions``: B×N×C×3 discs (x, y, r in input pixels; NaN rows = none) of each frame's
        AU regions from its own landmarks (``AUDataset``): they only score the maps
        (``region_frac``, in eval). ``prior_regions``: the same from landmarks that do not move
        with the AUs (training frames' neutral faces), for the bias and KL priors; without them
        the prior is the template (``prior_frac``). ``features``: the backbone's output for
        these images (B×C×h×w), computed earlier: the backbone is skipped and ``images`` may be
        None (``encode``); with ``features = self.backbone(images)`` the output is the same."""
        text, text_mask = self._check_text(text, text_mask)
        feat, size = self.encode(images, features)
        b, _, h, w = feat.shape
        x = self.proj(feat.flatten(2).transpose(1, 2))  # B×P×d
        bias = None
        frac = self.region_frac(regions, feat, size)  # B×N×P
        prior = self.prior_frac(prior_regions, feat, size)
        if self.uses_bias:
            bias = region_prior(prior, self.cfg.map_prior_floor)[0]
        # The bank is sampled on the CPU; everything the model reads lives on the images' device.
        if text_mask is not None:
            text_mask = text_mask.to(device=x.device, dtype=torch.bool, non_blocking=True)
        tokens, proto = self.text(text.to(device=x.device, dtype=x.dtype, non_blocking=True),
                                  text_mask)
        u, pool_maps = self.pool(x, proto, bias)
        if self.graph is not None:
            u = self.graph(u, prior=proto if self.cfg.language_edges else None)
        t = proto.unsqueeze(0).expand(b, -1, -1)
        act_maps = text_w = None
        pad = None if text_mask is None else ~text_mask
        for i in range(self.cfg.depth):
            if self.ddca is not None:
                u, t, act_maps, text_w = self.ddca[i](u, tokens, pad, t, x, bias)
            if self.cdca is not None:
                u, t = self.cdca[i](u, t)
        if act_maps is None:
            act_maps = pool_maps
        logits = self.heads(u, t)
        intensity, intensity_raw = self.intensity(u)
        return HiVAOutput(
            logits=logits,
            probs=torch.sigmoid(logits.float()),
            activation_maps=act_maps,
            pooling_maps=pool_maps,
            map_size=(h, w),
            visual=u,
            text_proto=t,
            prototypes=proto,
            text_attention=text_w,
            region_frac=frac,
            prior_frac=prior,
            intensity=intensity,
            intensity_raw=intensity_raw,
        )
