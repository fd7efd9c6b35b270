"""``attend``, the attention every DDCA/CDCA block runs, equals ``nn.MultiheadAttention`` (the
module whose parameters it reads) on its own and inside a whole HiVA: outputs, head-averaged
weights, gradients, and attention dropout drawn from the same random stream."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hiva.model import attention
from hiva.model.attention import CDCA, attend
from hiva.model.hiva import HiVA
from hiva.model.losses import HiVALoss
from hiva.regions import max_discs

D, H = 16, 4


def mha_attend(mha, q, kv, key_padding_mask=None, need_weights=False, bias=None):
    """The reference: what CrossAttention ran before ``attend``, the module itself with the
    bias repeated per head (batch-major, (B·heads)×L×S)."""
    mask = None if bias is None else bias.to(q.dtype).repeat_interleave(mha.num_heads, dim=0)
    return mha(q, kv, kv, key_padding_mask=key_padding_mask, need_weights=need_weights,
               average_attn_weights=True, attn_mask=mask)


def _inputs(self_attn: bool, pad: bool, bias: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(3, 5, D, generator=g, dtype=torch.float64, requires_grad=True)
    kv = q if self_attn else torch.randn(3, 7, D, generator=g, dtype=torch.float64,
                                         requires_grad=True)
    s = kv.shape[1]
    mask = None
    if pad:  # a different number of padded keys per row, never all of them
        mask = torch.arange(s).expand(3, s) >= torch.tensor([[s], [s - 2], [2]])
    b = torch.randn(3, 5, s, generator=g, dtype=torch.float64) if bias else None
    return q, kv, mask, b


def _run(fn, mha, q, kv, pad, need_weights, bias):
    """(output, weights, gradients of the parameters and inputs) of one call and a loss that
    reads the weights too (as the KL prior and the text entropy do)."""
    mha.zero_grad()
    for t in {id(q): q, id(kv): kv}.values():
        t.grad = None
    out, w = fn(mha, q, kv, pad, need_weights, bias)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
    if w is not None:
        loss = loss + (w * torch.arange(w.shape[-1], dtype=w.dtype)).sum()
    loss.backward()
    grads = [p.grad.clone() for p in mha.parameters()] + [q.grad.clone()]
    if kv is not q:
        grads.append(kv.grad.clone())
    return out.detach(), None if w is None else w.detach(), grads


def _assert_same(a, b):
    (oa, wa, ga), (ob, wb, gb) = a, b
    torch.testing.assert_close(oa, ob, rtol=1e-10, atol=1e-12)
    assert (wa is None) == (wb is None)
    if wa is not None:
        torch.testing.assert_close(wa, wb, rtol=1e-10, atol=1e-12)
    assert len(ga) == len(gb)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("need_weights", [False, True], ids=["sdpa", "weights"])
@pytest.mark.parametrize("pad", [False, True], ids=["", "padded"])
@pytest.mark.parametrize("bias", [False, True], ids=["", "bias"])
@pytest.mark.parametrize("self_attn", [False, True], ids=["cross", "self"])
@pytest.mark.parametrize("dropout", [0.0, 0.3], ids=["eval", "dropout"])
def test_attend_equals_multihead_attention(need_weights, pad, bias, self_attn, dropout):
    """Forward, head-averaged weights and every gradient, in float64; in training with
    attention dropout both draw the same mask from the same seed."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(D, H, dropout=dropout, batch_first=True).double()
    mha.train(dropout > 0)
    q, kv, mask, b = _inputs(self_attn, pad, bias)
    got = []
    for fn in (mha_attend, attend):
        torch.manual_seed(1)
        got.append(_run(fn, mha, q, kv, mask, need_weights, b))
    _assert_same(*got)
    if dropout:  # the dropout really ran: another seed gives another output
        torch.manual_seed(2)
        assert not torch.allclose(_run(attend, mha, q, kv, mask, need_weights, b)[0], got[0][0])
    if need_weights:  # the weights are distributions over the keys, none on padding
        w = got[1][1]
        if not dropout:
            torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
        if pad:
            assert torch.all(w.masked_select(mask.unsqueeze(1).expand_as(w)) == 0)


def _reference(monkeypatch):
    """Swap the whole model back to the modules' own forwards."""
    monkeypatch.setattr(attention, "attend", mha_attend)
    monkeypatch.setattr(attention.EncoderLayer, "_sa_block", nn.TransformerEncoderLayer._sa_block)


def test_cdca_layers_keep_pytorchs_keys_and_initialisation():
    """Checkpoints load unchanged, and a seed builds the same weights as before."""
    torch.manual_seed(0)
    layer = CDCA(D, H, 0.1).v_self
    torch.manual_seed(0)
    _ = attention.CrossAttention(D, H, 0.1), attention.CrossAttention(D, H, 0.1)
    ref = nn.TransformerEncoderLayer(D, H, 4 * D, 0.1, activation="gelu", batch_first=True,
                                     norm_first=True)
    assert list(layer.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(layer.state_dict()[k], v, rtol=0, atol=0)


def _hiva_step(cfg, images, text, text_mask, regions, targets, seed=1):
    torch.manual_seed(0)
    model = HiVA(cfg).double().train()
    model.set_region_template(regions[0])
    torch.manual_seed(seed)
    out = model(images, text, text_mask, prior_regions=regions)
    loss, _ = HiVALoss(cfg)(out, targets)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_whole_hiva_step_equals_the_one_through_multihead_attention(
        dropout, toy_cfg, toy_batch, monkeypatch):
    """Two stacks, padded descriptions, the log-prior bias and the KL prior, in training (with
    attention dropout): every output and every parameter's gradient, float64."""
    cfg = toy_cfg(depth=2, dropout=dropout, map_prior="both", feature_stride=16)
    images, text, targets = toy_batch(cfg, b=3, m=4)
    images, text = images.double(), text.double()
    text_mask = torch.ones(cfg.num_aus, 4, dtype=torch.bool)
    text_mask[::2, 3] = False
    text_mask[1::3, 1:] = False
    regions = torch.full((3, cfg.num_aus, max_discs(cfg.aus), 3), float("nan"),
                         dtype=torch.float64)
    for i in range(cfg.num_aus):
        regions[:, i, 0] = torch.tensor([10.0 + 3 * i, 12.0 + 2 * i, 10.0], dtype=torch.float64)
    lean = _hiva_step(cfg, images, text, text_mask, regions, targets)
    _reference(monkeypatch)
    ref = _hiva_step(cfg, images, text, text_mask, regions, targets)
    for field in ("logits", "activation_maps", "pooling_maps", "visual", "text_proto",
                  "text_attention"):
        torch.testing.assert_close(getattr(lean[0], field), getattr(ref[0], field),
                                   rtol=1e-9, atol=1e-11)
    assert lean[1].keys() == ref[1].keys() and len(lean[1]) > 50
    for name, g in ref[1].items():
        torch.testing.assert_close(lean[1][name], g, rtol=1e-8, atol=1e-10, msg=name)
