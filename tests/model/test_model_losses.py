"""HiVALoss against hand computation; per-AU weights; text sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.hiva import HiVAOutput
from hiva.model.losses import HiVALoss, au_weights_from_rates
from hiva.model.text import sample_text


def _out(logits, visual=None, proto=None):
    """An output with pure text prototypes ``proto`` (N×d)."""
    b, n = logits.shape
    visual = visual if visual is not None else torch.ones(b, n, 2)
    proto = proto if proto is not None else torch.ones(n, 2)
    maps = torch.full((b, n, 1), 1.0)
    return HiVAOutput(logits, torch.sigmoid(logits), maps, maps, (1, 1), visual,
                      proto.expand(b, -1, -1), proto, None)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_weighted_asl_matches_hand_computation():
    cfg = ModelConfig(aus=(1, 2), pretrained=None, backbone="resnet18", align_weight=0.0)
    w = torch.tensor([0.5, 1.5])
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])  # the last label is unknown
    loss, parts = HiVALoss(cfg, w)(_out(logits), y, mask)
    p = [[_sig(2.0), _sig(-1.0)], [_sig(0.5), _sig(3.0)]]
    terms = [
        -0.5 * math.log(p[0][0]),  # positive: −w·log p
        -1.5 * p[0][1] * math.log(1 - p[0][1]),  # negative: −w·p·log(1−p)
        -0.5 * p[1][0] * math.log(1 - p[1][0]),
    ]
    assert loss.item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    assert set(parts) == {"cls", "total"}


def test_asl_negative_weight_is_detached():
    cfg = ModelConfig(aus=(1,), pretrained=None, backbone="resnet18", align_weight=0.0)
    x = torch.tensor([[0.7]], requires_grad=True)
    loss, _ = HiVALoss(cfg)(_out(x), torch.zeros(1, 1))
    loss.backward()
    p = _sig(0.7)
    # d/dx[−p̄·log(1−p)] with p̄ constant = p̄·p
    assert x.grad.item() == pytest.approx(p * p, rel=1e-6)


def test_weighted_bce_matches_torch_and_ignores_masked():
    cfg = ModelConfig(aus=(1, 2, 4), pretrained=None, backbone="resnet18", loss="bce",
                      align_weight=0.0)
    w = torch.tensor([1.0, 2.0, 0.0])
    logits = torch.randn(4, 3)
    y = (torch.rand(4, 3) > 0.5).float()
    loss, _ = HiVALoss(cfg, w)(_out(logits), y)
    ref = F.binary_cross_entropy_with_logits(logits, y, weight=w.expand(4, 3))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 1] = False
    changed = logits.clone()
    changed[0, 1] = 50.0
    a, _ = HiVALoss(cfg, w)(_out(logits), y, mask)
    b, _ = HiVALoss(cfg, w)(_out(changed), y, mask)
    assert a.item() == b.item()


def test_alignment_by_hand():
    cfg = ModelConfig(aus=(1, 2), pretrained=None, backbone="resnet18", align_weight=0.5,
                      align_temperature=0.5)
    visual = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    proto = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Frame 0 has AU1 on: the one positive. Its negatives: frame 1 (AU1 labelled off) scored
    # against AU1's prototype, and AU2's prototype scored against frame 0's AU1 node.
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logits = torch.zeros(2, 2)
    loss, parts = HiVALoss(cfg)(_out(logits, visual, proto), y)
    c = 1 / math.sqrt(2)
    s_pos, s_frame, s_other = 1.0 / 0.5, 0.0 / 0.5, c / 0.5
    align = -math.log(math.exp(s_pos) / (math.exp(s_pos) + math.exp(s_frame) + math.exp(s_other)))
    assert parts["align"].item() == pytest.approx(align, rel=1e-6)
    assert loss.item() == pytest.approx(parts["cls"].item() + 0.5 * align, rel=1e-6)
    # Frame 1's AU1 label unknown: it stops being a negative.
    mask = torch.tensor([[True, True], [False, True]])
    _, parts = HiVALoss(cfg)(_out(logits, visual, proto), y, mask)
    align = -math.log(math.exp(s_pos) / (math.exp(s_pos) + math.exp(s_other)))
    assert parts["align"].item() == pytest.approx(align, rel=1e-6)


def test_au_weights_from_rates():
    w = au_weights_from_rates([0.1, 0.2, 0.4])
    assert w.sum().item() == pytest.approx(3.0)
    assert w[0].item() == pytest.approx(2 * w[1].item()) == pytest.approx(4 * w[2].item())
    z = au_weights_from_rates([0.0, 0.5, 0.25])  # never-seen AU: finite, largest weight
    assert torch.isfinite(z).all() and z.argmax().item() == 0
    assert z.sum().item() == pytest.approx(3.0)


def _bank():
    g = torch.Generator().manual_seed(0)
    return {1: torch.randn(5, 4, generator=g), 2: torch.randn(2, 4, generator=g)}


def test_sample_text_training_draws_m_each():
    bank = _bank()
    g = torch.Generator().manual_seed(1)
    text, mask = sample_text(bank, (1, 2), 3, g, train=True)
    assert text.shape == (2, 3, 4) and mask.all()
    rows1 = {tuple(r.tolist()) for r in bank[1]}
    assert len({tuple(r.tolist()) for r in text[0]}) == 3  # without replacement when enough
    assert all(tuple(r.tolist()) in rows1 for r in text[0])
    # AU 2 has 2 < 3 descriptions: drawn with replacement
    assert all(any(torch.equal(r, s) for s in bank[2]) for r in text[1])


def test_sample_text_eval_is_fixed_and_padded():
    bank = _bank()
    a, ma = sample_text(bank, (1, 2), 4, torch.Generator().manual_seed(5), train=False)
    b, mb = sample_text(bank, (1, 2), 4, torch.Generator().manual_seed(9), train=False)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert ma.tolist() == [[True] * 4, [True, True, False, False]]
    full, mf = sample_text(bank, (2, 1), None, train=False)
    assert full.shape == (2, 5, 4) and mf.sum().item() == 7
    torch.testing.assert_close(full[0, :2], bank[2])


def test_sample_text_missing_au():
    with pytest.raises(HivaError, match="no descriptions for AU 4"):
        sample_text(_bank(), (1, 4), 2)
