"""Backbone weights: strict loads, key mapping, local files, and the shipped Lite0 (integration)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hiva.errors import HivaError
from hiva.model.backbone import (
    create_timm_model,
    load_strict,
    map_lukemelas_to_timm,
    shipped_lite0_path,
)
from hiva.model.config import ModelConfig


def test_lukemelas_mapping_checks_shapes_and_names_keys():
    dst = {"conv_stem.weight": torch.zeros(4, 3), "bn1.weight": torch.zeros(4),
           "bn1.num_batches_tracked": torch.tensor(0)}
    ok = map_lukemelas_to_timm({"_conv_stem.weight": torch.ones(4, 3),
                                "_bn0.weight": torch.ones(4)}, dst)
    assert torch.equal(ok["conv_stem.weight"], torch.ones(4, 3)) and "bn1.num_batches_tracked" in ok
    with pytest.raises(HivaError, match=r"_bn0.weight \(5,\) onto timm bn1.weight \(4,\)"):
        map_lukemelas_to_timm({"_conv_stem.weight": torch.ones(4, 3),
                               "_bn0.weight": torch.ones(5)}, dst)
    with pytest.raises(HivaError, match="has 1 tensors but the timm model has 2"):
        map_lukemelas_to_timm({"_conv_stem.weight": torch.ones(4, 3)}, dst)


def test_strict_load_names_missing_and_unexpected_keys():
    m = torch.nn.Linear(2, 3)
    with pytest.raises(HivaError, match="missing bias; unexpected extra"):
        load_strict(m, {"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}, "f.pt")
    with pytest.raises(HivaError, match="wrong shape weight"):
        load_strict(m, {"weight": torch.zeros(2, 2), "bias": torch.zeros(3)}, "f.pt")


def test_local_safetensors_and_pth_round_trip(tmp_path):
    from safetensors.torch import save_file

    src = create_timm_model("resnet18", None)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, tmp_path / "r18.safetensors")
    torch.save({"state_dict": sd}, tmp_path / "r18.pth")
    for name in ("r18.safetensors", "r18.pth"):
        got = create_timm_model("resnet18", str(tmp_path / name))
        assert torch.equal(got.state_dict()["fc.weight"], sd["fc.weight"])
    with pytest.raises(HivaError, match="do not fit"):
        create_timm_model("resnet50", str(tmp_path / "r18.safetensors"))


def test_pickled_objects_are_refused(tmp_path):
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"weight": object()}, f)
    with pytest.raises(HivaError, match="tensor-only checkpoint"):
        create_timm_model("resnet18", str(p))
    with pytest.raises(HivaError, match="do not exist"):
        create_timm_model("resnet18", str(tmp_path / "nope.pth"))


def test_config_validation():
    with pytest.raises(HivaError, match="unknown backbone"):
        ModelConfig(backbone="vgg")
    with pytest.raises(HivaError, match="only exists for tf_efficientnet_lite0"):
        ModelConfig(backbone="resnet50")
    with pytest.raises(HivaError, match="divisible"):
        ModelConfig(d_model=30, num_heads=4)
    with pytest.raises(HivaError, match="head="):
        ModelConfig(head="mlp")
    with pytest.raises(HivaError, match="graph_k"):
        ModelConfig(aus="disfa", graph_k=9)
    c = ModelConfig(aus="disfa", backbone="swin_base", pretrained="none")
    assert c.backbone == "swin_base_patch4_window7_224" and c.pretrained is None and c.k == 3


def test_model_summary_cli():
    from hiva.cli import app

    r = CliRunner().invoke(app, ["model", "summary", "--aus", "disfa", "--backbone", "resnet18",
                                 "--d-model", "32", "--num-heads", "2", "--input-size", "64"])
    assert r.exit_code == 0, r.output
    assert "AUs=8" in r.output and "backbone" in r.output and "cdca" in r.output
    assert "GFLOPs" in r.output
    r = CliRunner().invoke(app, ["model", "summary", "--head", "mlp"])
    assert r.exit_code != 0 and isinstance(r.exception, HivaError)


@pytest.mark.integration
def test_shipped_lite0_classifies_the_cat():
    import skimage.data
    from PIL import Image

    assert shipped_lite0_path().is_file()
    model = create_timm_model("tf_efficientnet_lite0", "shipped").eval()
    img = Image.fromarray(skimage.data.chelsea())
    w, h = img.size
    s = 256 / min(w, h)  # timm's eval recipe for Lite0: resize 256, centre crop 224
    img = img.resize((round(w * s), round(h * s)), Image.BICUBIC)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)) / 255
    x = ((x - 0.5) / 0.5).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert 281 <= top5[0] <= 285, top5  # ImageNet's domestic cat classes
    assert probs[281:286].sum() > 0.5


@pytest.mark.integration
def test_hiva_with_shipped_lite0():
    from hiva.model.hiva import HiVA

    cfg = ModelConfig(aus="disfa", d_model=64, num_heads=2)
    model = HiVA(cfg).eval()
    assert model.normalisation() == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert model.input_size == 224
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224), torch.randn(8, 4, 384))
    assert out.map_size == (7, 7) and out.activation_maps.shape == (1, 8, 49)
