"""``model.freeze_backbone`` and forward passes from precomputed feature maps: a frozen backbone
stays in eval mode and out of the optimizer, its weights still save and load; ``features =
model.backbone(images)`` gives exactly the outputs of the images (HiVA and ME-GraphAU)."""

from __future__ import annotations

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model, load_weights, save_weights

SIZE = 64


def _cfg(**kw) -> ModelConfig:
    base = dict(aus="bp4d", backbone="resnet18", pretrained=None, input_size=SIZE, d_model=32,
                num_heads=2, text_dim=16, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def _regions(b: int, n: int) -> torch.Tensor:
    """B×N×1×3 discs (x, y, r) inside the image, one AU without a region."""
    g = torch.Generator().manual_seed(1)
    r = torch.cat([torch.rand(b, n, 1, 2, generator=g) * SIZE,
                   torch.full((b, n, 1, 1), SIZE / 5)], dim=-1)
    r[:, 0] = float("nan")
    return r


@pytest.mark.parametrize("kw", [dict(), dict(text_mode="learned", head="both"),
                                dict(arch="megraphau"), dict(arch="megraphau", graph_stage=2)],
                         ids=["hiva", "hiva-learned", "megraphau-1", "megraphau-2"])
def test_features_give_the_outputs_of_the_images(kw):
    cfg = _cfg(**kw)
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"), channels_last=False).eval()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, SIZE, SIZE, generator=g)
    text = torch.randn(cfg.num_aus, 4, cfg.text_width, generator=g)
    regions = _regions(3, cfg.num_aus)
    with torch.no_grad():
        a = model(images, text, regions=regions)
        feats = model.backbone(images)
        b = model(None, text, regions=regions, features=feats)
        c = model(images, text, regions=regions, features=feats)  # images: only the size
    for out in (b, c):
        assert torch.equal(a.logits, out.logits)
        assert torch.equal(a.activation_maps, out.activation_maps)
        assert torch.equal(a.region_frac, out.region_frac)
        assert a.map_size == out.map_size


def test_frozen_backbone_stays_in_eval_and_out_of_the_optimizer(tmp_path):
    from hiva.train.config import TrainConfig
    from hiva.train.steps import param_groups

    model = build_model(_cfg(freeze_backbone=True), torch.device("cpu"), channels_last=False)
    model.train()
    assert model.training and model.pool.training
    assert not any(m.training for m in model.backbone.modules())  # BatchNorm statistics frozen
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if
               not n.startswith("backbone."))
    grouped = {id(p) for g in param_groups(model, TrainConfig()) for p in g["params"]}
    assert not grouped & {id(p) for p in model.backbone.parameters()}
    assert len(grouped) == sum(1 for n, _ in model.named_parameters()
                               if not n.startswith("backbone."))
    # the weights still travel with the model (exports, hiva predict)
    assert any(k.startswith("backbone.") for k in model.state_dict())
    save_weights(model, tmp_path / "w.safetensors", {})
    other = build_model(_cfg(freeze_backbone=True), torch.device("cpu"), channels_last=False)
    load_weights(other, tmp_path / "w.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    # fine-tuning stays the default: the backbone trains with the model
    plain = build_model(_cfg(), torch.device("cpu"), channels_last=False).train()
    assert plain.backbone.training
    assert all(p.requires_grad for p in plain.backbone.parameters())


def test_freeze_backbone_is_validated():
    assert _cfg(freeze_backbone=True).freeze_backbone is True
    with pytest.raises(HivaError, match="freeze_backbone must be true or false"):
        _cfg(freeze_backbone="maybe")
