"""The AU-aware dynamic graph: AU-query attention pooling → per-AU nodes and spatial maps, then a
per-sample top-k cosine graph with a residual GCN update (after ME-GraphAU's ANFL, made spatial).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AUQueryPooling(nn.Module):
    """One query per AU, derived from that AU's text prototype by a shared map, attends over the
    visual tokens.

    x: B×P×d, prototypes N×d → nodes U: B×N×d and pooling maps B×N×P (each row a distribution
    over patches). No per-AU parameter: the AU a node belongs to is decided by its text.

    Single-head, so a key projection would be redundant (q·(Wx) = (Wᵀq)·x) and the value
    projection commutes with the weighted average: it is applied after pooling, on N nodes
    instead of P patches (same function, a fraction of the cost).
    """

    def __init__(self, d: int):
        super().__init__()
        self.query = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, prototypes: torch.Tensor,
                bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``bias``: B×N×P added to the logits (the log region prior of map_prior bias)."""
        q = self.query(prototypes.to(x.dtype))
        scores = torch.einsum("nd,bpd->bnp", q, x) / math.sqrt(x.shape[-1])
        if bias is not None:
            scores = scores + bias.to(scores.dtype)
        maps = scores.softmax(dim=-1)
        nodes = self.norm(self.value(torch.bmm(maps, x)) + q)
        return nodes, maps


def topk_adjacency(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Binary B×N×N graph: each node joins its k most cosine-similar nodes (itself included),
    made symmetric."""
    f = F.normalize(feats.float(), dim=-1)
    sim = f @ f.transpose(-1, -2)
    idx = sim.topk(k, dim=-1).indices
    adj = torch.zeros_like(sim).scatter_(-1, idx, 1.0)
    return torch.maximum(adj, adj.transpose(-1, -2))


def sym_normalise(adj: torch.Tensor) -> torch.Tensor:
    """D^-1/2 A D^-1/2 (degrees ≥ 1 because every node keeps its self-loop)."""
    d = adj.sum(-1).clamp_min(1.0).rsqrt()
    return d.unsqueeze(-1) * adj * d.unsqueeze(-2)


class GraphLayer(nn.Module):
    """U ← U + ReLU(BN(Â·U·W1 + U·W2))."""

    def __init__(self, d: int):
        super().__init__()
        self.w1 = nn.Linear(d, d, bias=False)
        self.w2 = nn.Linear(d, d, bias=False)
        self.bn = nn.BatchNorm1d(d)

    def forward(self, u: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = torch.bmm(adj.to(u.dtype), self.w1(u)) + self.w2(u)
        b, n, d = h.shape
        h = self.bn(h.reshape(b * n, d)).reshape(b, n, d)
        return u + F.relu(h)


class DynamicGraph(nn.Module):
    """Residual GCN over a graph rebuilt per sample from the current node features.

    ``prior``: optional N×N or B×N×N nodes features (the AU text prototypes) whose own top-k graph
    is OR-ed in as language-prior edges.
    """

    def __init__(self, d: int, k: int, layers: int = 1):
        super().__init__()
        self.k = k
        self.layers = nn.ModuleList(GraphLayer(d) for _ in range(layers))

    def forward(self, u: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        lang = None
        if prior is not None:
            lang = topk_adjacency(prior, self.k)
            if lang.dim() == 2:
                lang = lang.unsqueeze(0)
        for layer in self.layers:
            with torch.no_grad():  # edges are a discrete choice; gradients flow through U
                adj = topk_adjacency(u, self.k)
                if lang is not None:
                    adj = torch.maximum(adj, lang.expand_as(adj))
                adj = sym_normalise(adj)
            u = layer(u, adj)
        return u
