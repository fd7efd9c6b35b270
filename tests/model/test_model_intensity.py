"""The AU intensity head (``model.intensity``): off leaves the network as it was (keys, outputs);
on, each AU gets a 0-5 intensity from its own features, its loss ignores unknown targets and its
gradient reaches the head."""

from __future__ import annotations

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model
from hiva.model.intensity import intensity_loss
from hiva.model.losses import build_loss

KINDS = ("regression", "ordinal")


def _graph_cfg(**kw) -> ModelConfig:
    return ModelConfig(aus="bp4d", arch="megraphau", backbone="resnet18", pretrained=None,
                       input_size=64, **kw)


def _run(cfg, images, text):
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"), False).eval()
    with torch.no_grad():
        return model, model(images, text)


@pytest.mark.parametrize("arch", ["hiva", "megraphau"])
def test_off_is_the_model_without_the_head(arch, toy_cfg, toy_batch):
    """Default, ``off``, YAML's bare ``off`` (False): the same state-dict keys and the same
    outputs bit for bit as a config that never heard of intensity; on adds only the head."""
    base = toy_cfg() if arch == "hiva" else _graph_cfg()
    images, text, _ = toy_batch(toy_cfg())
    ref_model, ref = _run(base, images, text)
    for off in ("off", False):
        cfg = (toy_cfg(intensity=off) if arch == "hiva" else _graph_cfg(intensity=off))
        assert cfg.intensity == "off" and not cfg.has_intensity
        model, out = _run(cfg, images, text)
        assert list(model.state_dict()) == list(ref_model.state_dict())
        assert torch.equal(out.logits, ref.logits) and out.intensity is None
    on = toy_cfg(intensity="ordinal") if arch == "hiva" else _graph_cfg(intensity="ordinal")
    model, out = _run(on, images, text)
    extra = set(model.state_dict()) - set(ref_model.state_dict())
    assert extra == {"intensity_head.weight", "intensity_head.bias"}
    assert torch.equal(out.logits, ref.logits)  # built last: the other weights are the same


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arch", ["hiva", "megraphau"])
def test_head_shape_range_and_gradient(kind, arch, toy_cfg, toy_batch):
    cfg = toy_cfg(intensity=kind) if arch == "hiva" else _graph_cfg(intensity=kind)
    images, text, targets = toy_batch(toy_cfg(), b=3)
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"), False).train()
    with torch.no_grad():  # push the head to both ends of the scale
        model.intensity_head.bias.mul_(0).add_(torch.linspace(-30, 30, cfg.num_aus)[:, None])
    out = model(images, text)
    assert out.intensity.shape == (3, cfg.num_aus) and out.intensity.dtype == torch.float32
    assert out.intensity.min() >= 0 and out.intensity.max() <= 5
    assert out.intensity[:, 0].max() < 0.01 and out.intensity[:, -1].min() > 4.99
    with torch.no_grad():
        model.intensity_head.bias.zero_()
    out = model(images, text)
    loss_fn = build_loss(cfg)
    inten = torch.full(targets.shape, 2.5)
    total, parts = loss_fn(out, targets, intensity=inten)
    assert "intensity" in parts and parts["intensity"] > 0
    total.backward()
    assert model.intensity_head.weight.grad.abs().sum() > 0
    # without intensity targets the head takes no loss, and a loss without the term is the same
    plain, plain_parts = loss_fn(out, targets)
    assert "intensity" not in plain_parts
    assert torch.allclose(total, plain + cfg.intensity_weight * parts["intensity"])


@pytest.mark.parametrize("kind", KINDS)
def test_loss_leaves_unknown_intensities_out(kind):
    torch.manual_seed(0)
    raw = torch.randn(4, 3, 5) if kind == "ordinal" else torch.randn(4, 3)
    raw.requires_grad_(True)
    y = torch.tensor([[0.0, 1.0, 5.0], [2.0, 3.5, 4.0], [1.0, 0.0, 2.0], [3.0, 1.0, 0.5]])
    ref = intensity_loss(kind, raw, y)
    y2 = y.clone()
    y2[1, 2] = y2[0, 0] = float("nan")
    masked = intensity_loss(kind, raw, y2)
    # the mean over the known entries alone: a NaN target changes nothing else
    per = [intensity_loss(kind, raw[i:i + 1, j:j + 1], y[i:i + 1, j:j + 1])
           for i in range(4) for j in range(3) if (i, j) not in ((1, 2), (0, 0))]
    assert torch.allclose(masked, torch.stack(per).mean())
    assert not torch.allclose(masked, ref)
    masked.backward()
    assert raw.grad[1, 2].abs().sum() == 0 and raw.grad[0, 0].abs().sum() == 0
    everything_unknown = intensity_loss(kind, raw, torch.full_like(y, float("nan")))
    assert everything_unknown == 0


def test_ordinal_targets_sum_to_the_intensity():
    """Logits that give each threshold's soft target exactly make the expected value y, for
    whole and fractional intensities; their loss is the smallest."""
    from hiva.model.intensity import IntensityHead

    head = IntensityHead(2, 4, "ordinal")
    y = torch.tensor([[0.0, 2.0], [3.4, 5.0]])
    k = torch.arange(5.0)
    soft = (y.unsqueeze(-1) - k).clamp(0, 1)
    raw = torch.logit(soft.clamp(1e-6, 1 - 1e-6))
    assert torch.allclose(torch.sigmoid(raw).sum(-1), y, atol=1e-4)
    assert intensity_loss("ordinal", raw, y) < intensity_loss("ordinal", raw + 0.5, y)
    assert head(torch.zeros(1, 2, 4))[1].shape == (1, 2, 5)


def test_bad_intensity_settings_are_refused(toy_cfg):
    with pytest.raises(HivaError, match="intensity"):
        toy_cfg(intensity="yes please")
    with pytest.raises(HivaError, match="intensity"):
        toy_cfg(intensity=True)
    with pytest.raises(HivaError, match="intensity_weight"):
        toy_cfg(intensity="regression", intensity_weight=-1.0)


def test_checkpoint_carries_the_head(tmp_path, toy_cfg, toy_batch):
    """A checkpoint of a model with the head names it in its model_config, so the model read
    back from it has the head and loads strictly, giving the same intensities."""
    from hiva.config import config_dict
    from hiva.model.factory import load_weights, read_checkpoint, save_weights

    cfg = toy_cfg(intensity="regression", intensity_weight=0.5)
    images, text, _ = toy_batch(cfg)
    model, out = _run(cfg, images, text)
    path = tmp_path / "best.safetensors"
    save_weights(model, path, {"aus": list(cfg.aus), "model_config": config_dict(cfg)})
    mc, _ = read_checkpoint(path)
    assert mc.intensity == "regression" and mc.intensity_weight == 0.5
    torch.manual_seed(1)  # other initial weights: the file must overwrite them all
    again = build_model(mc, torch.device("cpu"), False).eval()
    load_weights(again, path)
    with torch.no_grad():
        assert torch.equal(again(images, text).intensity, out.intensity)
