"""The trainer's loader sends uint8 images (a quarter of the bytes to collate, pin and copy) and
the model scales and normalises them on its device (``AUNet.pixels``): the same numbers, on the
CPU, as the float transforms' per-image ``ToDtype`` and ``Normalize``, so outputs are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hiva.data.transforms import eval_transform, train_transform
from hiva.model.factory import build_model
from tests.model.conftest import SIZE

CPU = torch.device("cpu")


def _images(n: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (SIZE + 9, SIZE + 3, 3), dtype=np.uint8))
            for _ in range(n)]


@pytest.mark.parametrize("arch", [dict(), dict(arch="megraphau", graph_stage=2),
                                  dict(backbone="tf_efficientnet_lite0")],
                         ids=["hiva", "megraphau", "lite0-normalisation"])
def test_uint8_batches_give_the_outputs_of_normalised_float_ones(arch, toy_cfg, toy_batch):
    cfg = toy_cfg(**arch)
    model = build_model(cfg, CPU, channels_last=False).eval()
    mean, std = model.normalisation()
    _, text, _ = toy_batch(cfg)
    for make in (eval_transform, train_transform):
        kw = dict(size=SIZE, resize=SIZE + 4)
        floats, bytes_ = make(mean, std, **kw), make(mean, std, normalise=False, **kw)
        x, u = [], []
        for i, im in enumerate(_images()):  # the same random draws for both
            torch.manual_seed(i)
            x.append(floats(im))
            torch.manual_seed(i)
            u.append(bytes_(im))
        x, u = torch.stack(x), torch.stack(u)
        assert u.dtype == torch.uint8 and x.dtype == torch.float32
        assert torch.equal(model.pixels(u), x)
        assert torch.equal(model.pixels(x), x)  # float input is already normalised
        last = torch.channels_last  # as batch_to hands them over; the same layout for both
        with torch.no_grad():
            for fmt in (torch.contiguous_format, last):
                a = model(x.contiguous(memory_format=fmt), text)
                b = model(u.contiguous(memory_format=fmt), text)
                assert torch.equal(a.logits, b.logits)


def test_pixels_live_on_the_models_device_and_are_not_saved(toy_cfg):
    model = build_model(toy_cfg(), torch.device("meta"), channels_last=True)
    u = torch.zeros(2, 3, SIZE, SIZE, dtype=torch.uint8, device="meta")
    assert model.pixels(u).device.type == "meta"
    names = set(build_model(toy_cfg(), CPU, channels_last=False).state_dict())
    assert not {"pixel_mean", "pixel_std"} & names
