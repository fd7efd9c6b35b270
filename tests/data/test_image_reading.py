"""Every reader turns a picture into the same RGB pixels (``hiva.data.image_files.as_rgb``):
training sees what prediction is later asked to score. A 16-bit grey frame read white, and a
phone photo's EXIF rotation was applied at prediction but not in training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hiva.data.dataset import AUDataset
from hiva.data.image_files import as_rgb
from hiva.predict.media import as_frames, read_image


def _odd_files(folder) -> dict[str, np.ndarray]:
    """file name → the RGB pixels a person sees in it."""
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))  # a left-to-right ramp
    want = {}
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")
    want["grey16.png"] = np.repeat(grey[..., None], 3, 2)
    rgba = np.dstack([np.repeat(grey[..., None], 3, 2), np.full((64, 64), 7, np.uint8)])
    Image.fromarray(rgba).save(folder / "rgba.png")
    want["rgba.png"] = rgba[..., :3]
    Image.fromarray(grey).convert("P").save(folder / "palette.png")
    want["palette.png"] = np.repeat(grey[..., None], 3, 2)
    # a phone photo stored sideways: 40 wide, 20 high, EXIF says turn it 90° clockwise
    side = np.zeros((20, 40, 3), np.uint8)
    side[:, :10] = 255  # the left stripe becomes the top
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(side).save(folder / "phone.png", exif=exif)
    want["phone.png"] = np.rot90(side, k=-1)
    return want


def test_as_rgb_shows_what_a_person_sees(tmp_path):
    for name, pixels in _odd_files(tmp_path).items():
        with Image.open(tmp_path / name) as im:
            got = np.asarray(as_rgb(im))
        assert got.shape == pixels.shape, name
        assert np.abs(got.astype(int) - pixels).max() <= 1, name
    f = Image.fromarray(np.full((4, 4), 200.0, np.float32))  # float grey already in 0-255
    assert np.asarray(as_rgb(f)).max() == 200


def test_training_and_prediction_read_the_same_pixels(tmp_path):
    want = _odd_files(tmp_path)
    df = pd.DataFrame({"path": [str(tmp_path / n) for n in want], "subject": "a",
                       "sequence": "", "frame": range(len(want)), "AU01": 1})
    ds = AUDataset(df, (1,))
    for i, name in enumerate(want):
        trained_on = np.asarray(ds.load(i))
        scored = read_image(str(tmp_path / name))
        assert np.array_equal(trained_on, scored), name
        with Image.open(tmp_path / name) as im:  # an in-memory PIL image, as Detector takes
            assert np.array_equal(as_frames(im, "x")[0], scored), name


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_grey_is_scaled_not_clipped(mode):
    a = np.full((2, 2), 30000, np.uint16)
    im = Image.fromarray(a) if mode == "I;16" else Image.fromarray(a.astype(np.int32), "I")
    assert np.asarray(as_rgb(im)).max() == 117  # 30000 / 257, as OpenCV reads it (align)
