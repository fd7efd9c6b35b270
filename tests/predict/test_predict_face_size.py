"""A face too small or thin to score (a 1×1 image, a 10000×10 strip, a face far in the
background) is skipped and counted, never scored as if it were a face (issue 31)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hiva.errors import HivaError
from hiva.predict.faces import FaceFinder
from hiva.predict.settings import MIN_FACE, too_small
from tests.helpers import invoke


def test_the_rule():
    assert too_small(1, 1) == f"1×1 px, under --min-face {MIN_FACE}"
    assert "a strip" in too_small(10000, 40)
    assert too_small(10, 10000).startswith("10×10000 px, under")
    assert too_small(64, 64) is None and too_small(1280, 720) is None  # a 16:9 frame is fine
    assert too_small(20, 20, min_face=16) is None


class _Aligner:
    """Two detected faces, a large one and one far in the background (20 px)."""

    landmarks = False

    def align_all(self, rgb, max_faces=None):
        crop = np.zeros((8, 8, 3), np.uint8)
        return [(crop, {"score": 0.9, "box": (0, 0, 120, 130)}),
                (crop, {"score": 0.8, "box": (200, 10, 20, 22)})][:max_faces]

    def __call__(self, rgb):
        return np.zeros((8, 8, 3), np.uint8), {"score": 0.8, "box": (200, 10, 20, 22)}


def test_aligned_faces_under_the_minimum_are_left_out_and_counted():
    finder = FaceFinder(align=True)
    finder._aligner = _Aligner()
    frame = np.zeros((240, 320, 3), np.uint8)
    faces = finder.faces(frame)
    assert [f[2] for f in faces] == [(0.0, 0.0, 120.0, 130.0)]
    assert finder.skipped == 1 and finder.last_skip.startswith("20×22 px")
    assert finder.prepare(frame) == (None, 0.0)  # the picked face is the small one
    assert finder.skipped == 2
    small = FaceFinder(align=True, min_face=16)
    small._aligner = _Aligner()
    assert len(small.faces(frame)) == 2 and small.skipped == 0


def test_whole_frames_too_small_or_thin_are_rows_without_a_face(tiny_run):
    import hiva

    det = hiva.Detector(tiny_run, align=False)
    face = np.full((64, 64, 3), 120, np.uint8)
    df = det.detect([np.zeros((1, 1, 3), np.uint8), np.zeros((10, 2000, 3), np.uint8), face])
    assert list(df["success"]) == [0, 0, 1]
    assert df.loc[:1, "AU01_p"].isna().all() and df.loc[2, "AU01_p"] > 0
    assert det.counts["too_small"] == 2 and det.counts["faces"] == 1
    with pytest.raises(HivaError, match="min_face must be ≥ 1, got 0"):
        hiva.Detector(tiny_run, min_face=0)


def test_predict_and_explain_say_so(tiny_run, tmp_path, cli):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.new("RGB", (64, 64), (120, 120, 120)).save(tmp_path / "face.png")
    r = cli("predict", tmp_path / "dot.png", tmp_path / "face.png", "--checkpoint", tiny_run,
            "--out", tmp_path / "p.csv", "--no-progress")
    assert "1 faces scored, 1 frames without a face" in r.stderr
    assert f"1 faces not scored: under --min-face {MIN_FACE} px a side" in r.stderr
    assert "1×1 px" in r.stderr
    code, out = invoke("explain", tmp_path / "dot.png", "--checkpoint", tiny_run, "--out",
                       tmp_path / "ex")
    assert code == 1 and "too small to score (1×1 px" in out, out
    code, out = invoke("predict", tmp_path / "face.png", "--checkpoint", tiny_run, "--out",
                       tmp_path / "q.csv", "--min-face", "0")
    assert code == 1 and "--min-face must be ≥ 1, got 0" in out, out
