"""Prediction's speed paths compute what the plain ones do: BatchNorm folded into convolutions and
the channels_last memory format (hiva.predict.inference)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hiva.model.backbone import Backbone
from hiva.predict.inference import fold_batchnorm, prepare
from hiva.predict.loader import load


def _random_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm statistics and an affine map far from the identity (fresh ones are
    mean 0, variance 1, weight 1, bias 0: folding them would change next to nothing)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return module.eval()


@pytest.mark.parametrize("name, stride", [("resnet18", 32), ("tf_efficientnet_lite0", 32),
                                          ("tf_efficientnet_lite0", 16)])
def test_folding_keeps_the_backbone_output(name, stride):
    """Every BatchNorm of a timm backbone (plain ones; timm's BatchNormAct2d after ``SAME``-padded
    strided convolutions; a pruned stride-16 model) is folded, and the features stay."""
    bb = _random_statistics(Backbone(name, None, 64, stride))
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in bb.modules())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = bb(x)
    folded = copy.deepcopy(bb)
    assert fold_batchnorm(folded) == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), ref, rtol=1e-4, atol=1e-4)


class _Shared(nn.Module):
    """conv_a's output feeds its BatchNorm and a skip connection; conv_b's only its BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv_b, self.bn_b = nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv_a(x)
        z = self.bn_a(y) + y
        return self.bn_b(self.conv_b(z))


class _Branchy(_Shared):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def forward(self, x):
        return super().forward(x) if x.sum() > 0 else x


def test_only_a_convolution_feeding_its_batchnorm_alone_is_folded():
    m = _random_statistics(_Shared())
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    ref = m(x).detach()
    assert fold_batchnorm(m) == 1
    assert isinstance(m.bn_a, nn.BatchNorm2d) and isinstance(m.bn_b, nn.Identity)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
    # a model fx cannot trace, and one in training mode, are left as they are
    b = _random_statistics(_Branchy())
    assert fold_batchnorm(b) == 0 and isinstance(b.bn_b, nn.BatchNorm2d)
    assert fold_batchnorm(_Shared().train()) == 0


def _probs(ld, x, amp=None):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                enabled=amp is not None):
        return ld.model(x, *ld.text_input).probs.float()


def test_prepared_model_gives_the_plain_models_probabilities(tiny_run):
    """Folded and channels_last (the trained run's BatchNorms hold real statistics): the same
    probabilities in float32; under bf16 autocast no further from float32 than the plain model
    is."""
    plain = load(tiny_run, device="cpu")
    fast = load(tiny_run, device="cpu")
    fast.channels_last = True
    assert prepare(fast) == sum(isinstance(m, nn.BatchNorm2d)
                                for m in plain.model.backbone.modules()) > 0
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ref = _probs(plain, x)
    torch.testing.assert_close(_probs(fast, x.contiguous(memory_format=torch.channels_last)),
                               ref, rtol=0, atol=1e-5)
    bf_plain = (_probs(plain, x, torch.bfloat16) - ref).abs().max().item()
    bf_fast = (_probs(fast, x.contiguous(memory_format=torch.channels_last), torch.bfloat16)
               - ref).abs().max().item()
    assert bf_fast <= 2 * bf_plain + 2e-3
