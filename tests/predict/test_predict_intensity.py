"""``AUxx_r``: a run trained with the intensity head (``model.intensity``) predicts FACS
intensities (0-5) beside the probabilities, in the hiva and openface layouts (hiva.predict.table,
hiva.predict.stream); a run without the head writes none in the hiva layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiva.facs import au_column
from hiva.predict.table import OPENFACE_R
from tests.predict.helpers import TINY_AUS, train_tiny_run

R_COLS = [f"{au_column(a)}_r" for a in TINY_AUS]
P_COLS = [f"{au_column(a)}_p" for a in TINY_AUS]


@pytest.fixture(scope="module")
def intensity_run(tmp_path_factory) -> Path:
    """The tiny run of tests/predict/conftest.py with the regression intensity head."""
    return train_tiny_run(tmp_path_factory.mktemp("intensity_run"), intensity="regression")


def test_intensity_columns_match_the_model(intensity_run, media, tmp_path):
    import hiva

    det = hiva.Detector(intensity_run, align=False, batch_size=3)
    assert det.intensity_aus == TINY_AUS
    files = sorted(str(p) for p in media["folder"].rglob("img*.jpg"))
    df = det.detect(files)
    assert list(df.columns[-len(R_COLS):]) == R_COLS  # after the hiva layout's _p and _c
    r = df[R_COLS].to_numpy()
    assert np.isfinite(r).all() and (r >= 0).all() and (r <= 5).all()
    # the values are the model's intensity output for those faces, in the same order
    from hiva.predict.media import read_image

    x = det.to_batch([read_image(p) for p in files])
    want = det.forward(x).intensity.float().numpy()
    np.testing.assert_allclose(r, want, atol=1.01e-6)
    assert det.score([read_image(files[0])]).shape == (1, len(TINY_AUS))  # probabilities only
    # the openface layout: the same values under OpenFace's names, saved and read back
    f = det.detect(files, save=tmp_path / "of.csv", format="openface")
    of = pd.read_csv(f)
    for a in TINY_AUS:
        col = f"{au_column(a)}_r"
        if a in OPENFACE_R:
            np.testing.assert_allclose(of[col], df[col], atol=1.01e-6)
    missing = [f"{au_column(a)}_r" for a in OPENFACE_R if a not in TINY_AUS]
    assert of[missing].isna().all().all()  # OpenFace AUs this model has no head for: empty
    np.testing.assert_allclose(of[P_COLS], df[P_COLS], atol=1.01e-6)


def test_faceless_frames_and_no_head(intensity_run, tiny_run, media):
    import hiva

    det = hiva.Detector(intensity_run, align=True, batch_size=3)
    df = det.detect(media["video"])
    none = df["success"] == 0
    assert none.any() and df.loc[none, R_COLS].isna().all().all()
    assert df.loc[~none, R_COLS].notna().all().all()
    plain = hiva.Detector(tiny_run, align=True).detect(media["video"])
    assert not any(c.endswith("_r") for c in plain.columns)
