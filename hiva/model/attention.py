"""DDCA (disentangled, AU by AU) and CDCA (contextual, across AUs) dual cross-attention.

Shapes: B batch, N AUs, P patches, M description tokens per AU, d width.

Every attention keeps ``nn.MultiheadAttention``'s parameters (its initialisation and state-dict
keys: ``in_proj_weight``, ``in_proj_bias``, ``out_proj``) but runs through ``attend``, which
computes what that module computes in fewer kernels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """B×L×d → B×h×L×(d/h), a view."""
    b, n, d = x.shape
    return x.view(b, n, h, d // h).transpose(1, 2)


def attend(mha: nn.MultiheadAttention, q: torch.Tensor, kv: torch.Tensor,
           key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
           bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``mha(q, kv, kv, key_padding_mask, need_weights, attn_mask=bias per head)`` of a
    batch-first ``nn.MultiheadAttention`` with one width d, from its parameters.

    q: B×L×d, kv: B×S×d (``kv is q``: self-attention, one packed projection); ``bias``: B×L×S
    added to every head's logits, broadcast over heads (no per-head copy); ``key_padding_mask``:
    B×S, True = ignored. Without weights: one ``scaled_dot_product_attention`` call. With them:
    the explicit softmax, whose head average (after attention dropout, as the module returns
    it) is the second output, B×L×S. Dropout is the module's, in training only."""
    h, d = mha.num_heads, q.shape[-1]
    w, b = mha.in_proj_weight, mha.in_proj_bias
    if kv is q:
        qh, kh, vh = (_heads(x, h) for x in F.linear(q, w, b).split(d, -1))
    else:
        (wq, wkv), (bq, bkv) = w.split([d, 2 * d]), b.split([d, 2 * d])
        qh = _heads(F.linear(q, wq, bq), h)
        kh, vh = (_heads(x, h) for x in F.linear(kv, wkv, bkv).split(d, -1))
    mask = None  # the bias with the padding in it, broadcast over heads: B×1×L×S
    pad = None if key_padding_mask is None else key_padding_mask[:, None, None, :]  # B×1×1×S
    if bias is not None:
        mask = bias.to(qh.dtype)
        if key_padding_mask is not None:
            mask = mask.masked_fill(key_padding_mask.unsqueeze(1), float("-inf"))
        mask = mask.unsqueeze(1)
    p = mha.dropout if mha.training else 0.0
    weights = None
    if not need_weights:
        out = F.scaled_dot_product_attention(
            qh, kh, vh, attn_mask=mask if mask is not None or pad is None else ~pad, dropout_p=p)
    else:
        logits = (qh * (1.0 / math.sqrt(qh.shape[-1]))) @ kh.transpose(-1, -2)
        if mask is not None:
            logits = logits + mask
        elif pad is not None:
            logits = logits.masked_fill(pad, float("-inf"))
        a = logits.softmax(-1)
        if p > 0.0:
            a = F.dropout(a, p)
        weights = a.mean(1)
        out = a @ vh
    # Laid out sequence-first as the module lays its output out, so what reads it (a dropout
    # mask drawn in memory order) sees the same tensor as before.
    out = out.permute(2, 0, 1, 3).reshape(q.shape[1], q.shape[0], d)
    return F.linear(out, mha.out_proj.weight, mha.out_proj.bias).transpose(0, 1), weights


class CrossAttention(nn.Module):
    """Pre-norm residual cross-attention: q ← q + MHA(LN(q), LN(kv)) (``attend``)."""

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
        out, w = attend(self.attn, self.norm_q(q), self.norm_kv(kv), key_padding_mask,
                        need_weights, bias)
        return q + out, w


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (same parameters and keys) whose self-attention block runs
    through ``attend``. In evaluation without gradients PyTorch's fused fast path runs instead,
    as before; with a mask or a causal flag (CDCA passes none) the block is PyTorch's own."""

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        if attn_mask is not None or key_padding_mask is not None or is_causal:
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal)
        return self.dropout1(attend(self.self_attn, x, x)[0])


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
            return EncoderLayer(
                d, heads, ffn_mult * d, dropout, activation="gelu", batch_first=True,
                norm_first=True,
            )

        self.v_self = layer()
        self.t_self = layer()

    def forward(self, u: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zv, _ = self.v_from_t(u, t)
        zt, _ = self.t_from_v(t, u)
        return self.v_self(zv), self.t_self(zt)
