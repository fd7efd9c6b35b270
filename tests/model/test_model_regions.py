"""Region priors in the model: finer maps, the log-prior bias on both attention maps (from
AU-independent ``prior_regions`` in training, else the template; never from the frame's own
``regions``, which only score the maps), and the KL term."""

from __future__ import annotations

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.hiva import HiVA
from hiva.model.losses import HiVALoss
from hiva.regions import disc_fractions, max_discs, region_prior

SIZE = 64


def _regions(cfg, b=2):
    """Every AU gets one disc; they differ by AU and frame; the last AU has none."""
    n, c = cfg.num_aus, max_discs(cfg.aus)
    r = torch.full((b, n, c, 3), float("nan"))
    for i in range(n - 1):
        for j in range(b):
            r[j, i, 0] = torch.tensor([8.0 + 4 * i + 6 * j, 10.0 + 3 * i, 9.0])
    return r


def test_feature_stride_16_doubles_the_map_side(toy_cfg, toy_batch):
    images, text, _ = toy_batch(toy_cfg())
    coarse = HiVA(toy_cfg()).eval()(images, text)
    fine = HiVA(toy_cfg(feature_stride=16)).eval()(images, text)
    assert coarse.map_size == (2, 2) and fine.map_size == (4, 4)
    assert fine.activation_maps.shape[-1] == 16


def test_the_bias_makes_flat_attention_equal_the_prior(toy_cfg, toy_batch):
    cfg = toy_cfg(map_prior="bias", feature_stride=16, map_prior_floor=0.2)
    model = HiVA(cfg).eval()
    with torch.no_grad():  # flat logits everywhere: the maps are softmax(bias) = the prior
        for lin in (model.pool.query,):
            lin.weight.zero_()
            lin.bias.zero_()
        for blk in model.ddca:
            blk.t_from_v.attn.in_proj_weight.zero_()
            blk.t_from_v.attn.in_proj_bias.zero_()
    images, text, _ = toy_batch(cfg)
    regions = _regions(cfg)
    out = model(images, text, prior_regions=regions)
    frac = disc_fractions(regions, SIZE, (4, 4)).flatten(-2)
    logp, has = region_prior(frac, 0.2)
    prior = torch.where(has.unsqueeze(-1), logp.exp(), torch.full_like(logp, 1 / 16))
    torch.testing.assert_close(out.pooling_maps, prior, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.activation_maps, prior, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.prior_frac, frac)
    # Without prior_regions (evaluation, predict) the prior is the stored template: a frame's own
    # regions score the maps and change nothing else.
    model.set_region_template(regions[0])
    own = model(images, text, regions=regions.flip(0))
    torch.testing.assert_close(own.activation_maps, prior[:1].expand(2, -1, -1), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(own.region_frac, frac.flip(0))
    torch.testing.assert_close(model(images, text).logits, own.logits)
    assert "region_template" in model.state_dict()


def test_without_a_prior_regions_change_nothing_but_are_scored(toy_cfg, toy_batch):
    cfg = toy_cfg(feature_stride=16)
    model = HiVA(cfg).eval()
    images, text, _ = toy_batch(cfg)
    a = model(images, text)
    b = model(images, text, regions=_regions(cfg))
    torch.testing.assert_close(a.logits, b.logits)
    assert a.region_frac is None and b.region_frac.shape == (2, cfg.num_aus, 16)
    assert "region_template" not in model.state_dict()  # old checkpoints still load


def test_the_kl_term_joins_the_loss_and_reaches_the_backbone(toy_cfg, toy_batch):
    cfg = toy_cfg(map_prior="kl", feature_stride=16, map_prior_weight=2.0)
    model = HiVA(cfg).train()
    images, text, targets = toy_batch(cfg)
    out = model(images, text, regions=_regions(cfg))
    assert float(HiVALoss(cfg)(out, targets)[1]["map_kl"]) == 0  # no template: no prior
    model.set_region_template(_regions(cfg)[0])
    assert float(HiVALoss(cfg)(model(images, text), targets)[1]["map_kl"]) > 0  # the template
    out = model(images, text, prior_regions=_regions(cfg))
    total, parts = HiVALoss(cfg)(out, targets)
    assert float(parts["map_kl"]) > 0
    without = HiVALoss(toy_cfg(feature_stride=16))(out, targets)[0]
    extra = float((total - without).detach())
    assert extra == pytest.approx(2.0 * float(parts["map_kl"]), rel=1e-4)
    total.backward()
    assert model.backbone.model.conv1.weight.grad.abs().sum() > 0


def test_bad_prior_settings_are_one_clear_line():
    with pytest.raises(HivaError, match="map_prior"):
        ModelConfig(map_prior="strong")
    with pytest.raises(HivaError, match="feature_stride"):
        ModelConfig(feature_stride=8)
    with pytest.raises(HivaError, match="patch size"):
        ModelConfig(backbone="clip:openai/clip-vit-base-patch32", feature_stride=16)
