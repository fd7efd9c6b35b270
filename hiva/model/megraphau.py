"""ME-GraphAU (Luo et al., IJCAI 2022, "Learning Multi-dimensional Edge Feature-based AU Relation
Graph for Facial Action Unit Recognition") and its OpenGraphAU release, as an architecture of hiva
(``model.arch: megraphau``), written from the paper and the public code's behaviour.

    backbone tokens X (B×L×C) → global linear block → X' (B×L×c)
    AFG: one linear block per AU → F_u (B×N×L×c); node features f_v = mean over L
    stage 1 (ANFL): one GCN layer over a top-k graph rebuilt per sample (FGG)
    stage 2 (MEFL): GEM (two cross-attentions) → multi-dimensional edges f_e (B×N²×c);
                    two gated GCN layers update nodes and edges; edge_fc classifies each edge's
                    co-occurrence pattern (ME-GraphAU only)
    p_i = cos(ReLU(s_i), f_v,i) with a free vector s_i per AU: a probability in [0, 1]

OpenGraphAU (``graph_variant: opengraphau``) differs in three places: its stage-2 layers add the
residual after the activation, it has no edge classifier, and ``side_aus`` get left and right
outputs (cosine of the main AU's node with their own vectors). The per-AU linear blocks run as one
batched product (same function as N separate blocks, one kernel). State dicts of the original
code are mapped onto this module by ``hiva.predict.import_graphau``.

No per-frame spatial attention exists in this model; ``activation_maps`` reports each AU's share
of its feature energy per cell (the mean of F_u over channels, normalised over L), so the
localisation scores and ``hiva explain`` can be read for it as for HiVA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.hiva import AUNet, HiVAOutput

PROB_EPS = 1e-6  # logits of the [0, 1] probabilities are taken after clamping to [eps, 1 - eps]


def _kaiming_linear(layer: nn.Linear, fan: int) -> None:
    layer.weight.data.normal_(0, math.sqrt(2.0 / fan))


class LinearBlock(nn.Module):
    """Linear → BatchNorm over channels → ReLU on B×L×C tokens (ME-GraphAU's LinearBlock)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.bn = nn.BatchNorm1d(cout)
        _kaiming_linear(self.fc, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.fc(x).transpose(1, 2))).transpose(1, 2)


class AUBlocks(nn.Module):
    """N linear blocks (one per AU) as one batched product: x B×L×c → F_u B×N×L×c.
    ``weight`` N×c×c (out × in per AU), ``bias`` N×c, ``bn`` over the N·c channels (each AU's
    statistics its own, as with N separate BatchNorm1d)."""

    def __init__(self, n: int, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, c, c) * math.sqrt(2.0 / c))
        bound = 1 / math.sqrt(c)
        self.bias = nn.Parameter(torch.empty(n, c).uniform_(-bound, bound))
        self.bn = nn.BatchNorm1d(n * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, c = x.shape
        n = self.weight.shape[0]
        y = torch.einsum("blc,noc->bnlo", x, self.weight) + self.bias[None, :, None, :]
        y = y.permute(0, 1, 3, 2).reshape(b, n * c, length)  # channels: AU-major
        y = F.relu(self.bn(y)).reshape(b, n, c, length)
        return y.transpose(2, 3)


def _adjacency(f: torch.Tensor, k: int, metric: str) -> torch.Tensor:
    """B×N×N 0/1 graph: row i keeps the nodes at least as close as its k-th nearest (ties kept,
    as the original's threshold does); similarities are computed on detached features."""
    x = f.detach()
    if metric in ("dots", "cosine"):
        if metric == "cosine":
            x = F.normalize(x, p=2, dim=-1)
        s = x @ x.transpose(1, 2)
        th = s.topk(k, dim=-1).values[..., -1:]
        return (s >= th).to(f.dtype)
    d = (x.unsqueeze(1) - x.unsqueeze(2)).abs()  # d[b, i, j] = |x_j - x_i|
    d = d.sum(-1) if metric == "l1" else d.pow(2).sum(-1).sqrt()
    th = d.topk(k, dim=-1, largest=False).values[..., -1:]
    return (d <= th).to(f.dtype)


class NodeGCN(nn.Module):
    """Stage 1 (ANFL's FGG): f ← ReLU(f + BN(Â·V(f) + U(f))), Â = D^-½ A D^-½ of the top-k graph."""

    def __init__(self, c: int, n: int, k: int, metric: str):
        super().__init__()
        self.k, self.metric = k, metric
        self.U = nn.Linear(c, c)
        self.V = nn.Linear(c, c)
        self.bnv = nn.BatchNorm1d(n)
        _kaiming_linear(self.U, c)
        _kaiming_linear(self.V, c)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        adj = _adjacency(f, self.k, self.metric)
        d = adj.sum(-1).pow(-0.5)
        a = d.unsqueeze(-1) * adj * d.unsqueeze(-2)
        return F.relu(f + self.bnv(a @ self.V(f) + self.U(f)))


class CrossAttention(nn.Module):
    """Single-head attention of queries from ``y`` over keys/values from ``x`` (ME-GraphAU's
    CrossAttn: q, k of width c/2, v of width c)."""

    def __init__(self, c: int):
        super().__init__()
        self.linear_q = nn.Linear(c, c // 2)
        self.linear_k = nn.Linear(c, c // 2)
        self.linear_v = nn.Linear(c, c)
        self.scale = (c // 2) ** -0.5
        _kaiming_linear(self.linear_q, c // 2)
        _kaiming_linear(self.linear_k, c // 2)
        _kaiming_linear(self.linear_v, c)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        attn = (self.linear_q(y) @ self.linear_k(x).transpose(-2, -1)) * self.scale
        return attn.softmax(-1) @ self.linear_v(x)


class EdgeExtractor(nn.Module):
    """GEM: FAM attends each AU's features over the global map; ARM attends, for the edge
    e = i·N + j, node j's result (queries) over node i's (keys, values); a linear map and a
    BatchNorm over the N² edges give the multi-dimensional edge features (B×N²×L×c)."""

    def __init__(self, c: int, n: int):
        super().__init__()
        self.n = n
        self.FAM = CrossAttention(c)
        self.ARM = CrossAttention(c)
        self.edge_proj = nn.Linear(c, c)
        self.bn = nn.BatchNorm2d(n * n)
        _kaiming_linear(self.edge_proj, c)

    def forward(self, fu: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b, n, length, c = fu.shape
        feat = self.FAM(fu, x.unsqueeze(1))  # B×N×L×c
        # Projections once per node, then paired: edge (i, j) = end i, start j.
        q = self.ARM.linear_q(feat).unsqueeze(1)  # start j: B×1×N×L×c/2
        k = self.ARM.linear_k(feat).unsqueeze(2)  # end i:   B×N×1×L×c/2
        v = self.ARM.linear_v(feat).unsqueeze(2)
        attn = (q @ k.transpose(-2, -1)) * self.ARM.scale  # B×N×N×L×L
        out = attn.softmax(-1) @ v  # B×N×N×L×c
        return self.bn(self.edge_proj(out.reshape(b, n * n, length, c)))


class GatedGCNLayer(nn.Module):
    """One gated GCN layer over nodes (B×N×c) and edges (B×N²×c) (Bresson & Laurent's residual
    gated graph convnets, as ME-GraphAU uses them). ``post``: ME-GraphAU's ReLU(res + BN(·));
    otherwise OpenGraphAU's res + ReLU(BN(·))."""

    def __init__(self, c: int, n: int, post: bool):
        super().__init__()
        self.n, self.post = n, post
        for name in ("U", "V", "A", "B", "E"):
            lin = nn.Linear(c, c, bias=False)
            _kaiming_linear(lin, c)
            setattr(self, name, lin)
        self.bnv = nn.BatchNorm1d(n)
        self.bne = nn.BatchNorm1d(n * n)

    def forward(self, x: torch.Tensor, edge: torch.Tensor):
        b, n, c = x.shape
        # edge e = i·N + j: end node i (A), start node j (B)
        pair = self.A(x).unsqueeze(2) + self.B(x).unsqueeze(1)  # B×N×N×c
        edge = edge + F.relu(self.bne(pair.reshape(b, n * n, c) + self.E(edge)))
        gate = torch.sigmoid(edge).view(b, n, n, c).softmax(dim=2)  # over the start nodes j
        msg = (gate * self.V(x).unsqueeze(1)).sum(2) / n  # B×N×c
        h = self.bnv(self.U(x) + msg)
        x = F.relu(x + h) if self.post else x + F.relu(h)
        return x, edge


class MEGraphAU(AUNet):
    """``ModelConfig(arch="megraphau")``; ``graph_stage`` 1 (ANFL) or 2 (MEFL)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        n = cfg.num_aus
        self.backbone = self._build_backbone(cfg)
        cin = self.backbone.num_features
        c = cfg.graph_width or (cin // 2 if "swin" in cfg.backbone else cin // 4)
        self.global_linear = LinearBlock(cin, c)
        self.au_blocks = AUBlocks(n, c)
        self.sc = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n, c)))
        if cfg.side_aus:
            bad = [a for a in cfg.side_aus if a not in cfg.aus]
            if bad:
                raise HivaError(f"side_aus {bad} are not AUs of this model ({list(cfg.aus)}); "
                                "list only its AUs")
            self.side_sc = nn.Parameter(nn.init.xavier_uniform_(torch.empty(2 * len(cfg.side_aus),
                                                                            c)))
            self.register_buffer("side_index", torch.tensor(
                [cfg.aus.index(a) for a in cfg.side_aus for _ in "LR"]), persistent=False)
        if cfg.graph_stage == 1:
            self.gnn = NodeGCN(c, n, cfg.k, cfg.graph_metric)
        else:
            self.edge_extractor = EdgeExtractor(c, n)
            post = cfg.graph_variant == "me-graphau"
            self.gnn = nn.ModuleList(GatedGCNLayer(c, n, post) for _ in range(2))
            if cfg.graph_variant == "me-graphau":
                self.edge_fc = nn.Linear(c, 4)
                nn.init.xavier_uniform_(self.edge_fc.weight)
        self._build_intensity(cfg, c)  # on the node features f_v

    def forward(self, images: torch.Tensor | None, text=None, text_mask=None, regions=None,
                prior_regions=None, features: torch.Tensor | None = None):
        """``text``, ``text_mask`` and ``prior_regions`` are ignored (no language path, no region
        prior); ``regions`` (B×N×C×3) give ``region_frac`` for the localisation scores, as in
        HiVA."""
        feat, size = self.encode(images, features)  # precomputed ``features`` skip the backbone
        b, _, h, w = feat.shape
        x = self.global_linear(feat.flatten(2).transpose(1, 2))  # B×L×c
        fu = self.au_blocks(x)  # B×N×L×c
        fv = fu.mean(dim=2)
        edge_logits = None
        if self.cfg.graph_stage == 1:
            fv = self.gnn(fv)
        else:
            fe = self.edge_extractor(fu, x).mean(dim=2)  # B×N²×c
            for layer in self.gnn:
                fv, fe = layer(fv, fe)
            if hasattr(self, "edge_fc"):
                edge_logits = self.edge_fc(fe)  # B×N²×4
        node = F.normalize(fv, p=2, dim=-1)
        sc = F.normalize(F.relu(self.sc), p=2, dim=-1)
        probs = (node * sc).sum(-1)
        side = None
        if self.cfg.side_aus:
            ssc = F.normalize(F.relu(self.side_sc), p=2, dim=-1)
            side = (node[:, self.side_index] * ssc).sum(-1)  # B×2S: L, R per side AU
        energy = fu.float().mean(-1)  # B×N×L, ≥ 0 (after ReLU)
        maps = energy / energy.sum(-1, keepdim=True).clamp_min(1e-12)
        p = probs.float().clamp(PROB_EPS, 1 - PROB_EPS)
        intensity, intensity_raw = self.intensity(fv)
        return HiVAOutput(
            logits=torch.log(p) - torch.log1p(-p),
            probs=probs,
            activation_maps=maps,
            pooling_maps=maps,
            map_size=(h, w),
            visual=fv,
            text_proto=sc.unsqueeze(0).expand(b, -1, -1),
            prototypes=sc,
            text_attention=None,
            region_frac=self.region_frac(regions, feat, size),
            edge_logits=edge_logits,
            side_probs=side,
            intensity=intensity,
            intensity_raw=intensity_raw,
        )
