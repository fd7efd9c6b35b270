"""DDCA (disentangled, AU by AU) and CDCA (contextual, across AUs) dual cross-attention.

Shapes: B batch, N AUs, P patches, M description tokens per AU, d width.
"""

from __future__ import annotations

import torch
from torch import nn


class CrossAttention(nn.Module):
    """Pre-norm residual cross-attention: q ← q + MHA(LN(q), LN(kv))."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)

    def forward(
        self,
        q: torch.Tensor,
        kv: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``bias``: B×L×S added to every head's attention logits (e.g. a log prior)."""
        kvn = self.norm_kv(kv)
        mask = None
        if bias is not None:  # MHA takes a per-head float mask, batch-major: (B·heads)×L×S
            mask = bias.to(q.dtype).repeat_interleave(self.attn.num_heads, dim=0)
        out, w = self.attn(
            self.norm_q(q), kvn, kvn, key_padding_mask=key_padding_mask,
            need_weights=need_weights, average_attn_weights=True, attn_mask=mask,
        )
        return q + out, w


class DDCA(nn.Module):
    """Disentangled Dual Cross-Attention; no AU ever sees another AU's text.

    - vision ← text: u_i ← u_i + MHA(u_i, T_i). The AU axis is folded into the attention batch
      (N batches of B queries over that AU's M tokens), so it is one call. Its head-averaged
      weights (B×N×M) say which of the AU's descriptions each image drew on: the choice the
      descriptions offer, whose entropy the trainer records.
    - text ← vision: t_i ← t_i + MHA(t_i, X). Each AU prototype is its own query over the patches;
      its head-averaged attention is AU i's activation map (B×N×P, rows sum to 1).
    """

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.v_from_t = CrossAttention(d, heads, dropout)
        # No attention dropout here: its weights are the activation maps, which must stay
        # distributions over patches in training too.
        self.t_from_v = CrossAttention(d, heads, 0.0)

    def forward(self, u, tokens, token_pad, proto, x, map_bias=None):
        # u: B×N×d, tokens: N×M×d, token_pad: N×M (True = padding), proto: B×N×d, x: B×P×d,
        # map_bias: B×N×P log region prior added to the text←vision logits (map_prior bias)
        u_new, text_w = self.v_from_t(u.transpose(0, 1), tokens, token_pad, need_weights=True)
        t_new, maps = self.t_from_v(proto, x, need_weights=True, bias=map_bias)
        return u_new.transpose(0, 1), t_new, maps, text_w.transpose(0, 1)


class CDCA(nn.Module):
    """Contextual Dual Cross-Attention over all AUs, each stream then a pre-norm transformer
    layer (self-attention over the N AUs + FFN).

    Z_v = U + MHA(U, T);  Z_t = T + MHA(T, U)   (both use the inputs, not each other's output)
    """

    def __init__(self, d: int, heads: int, dropout: float, ffn_mult: int = 4):
        super().__init__()
        self.v_from_t = CrossAttention(d, heads, dropout)
        self.t_from_v = CrossAttention(d, heads, dropout)

        def layer():
            return nn.TransformerEncoderLayer(
                d, heads, ffn_mult * d, dropout, activation="gelu", batch_first=True,
                norm_first=True,
            )

        self.v_self = layer()
        self.t_self = layer()

    def forward(self, u: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zv, _ = self.v_from_t(u, t)
        zt, _ = self.t_from_v(t, u)
        return self.v_self(zv), self.t_self(zt)
