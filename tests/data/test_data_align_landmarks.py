"""``hiva data align`` stores each face's MediaPipe mesh (478 points) in crop pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hiva.data.manifest import manifest_meta, read_manifest, write_manifest


def _astro_manifest(tmp_path, blank: bool = True):
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astro.png")
    paths, subjects = [str(tmp_path / "astro.png")], ["a"]
    if blank:
        Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "blank.png")
        paths, subjects = paths + [str(tmp_path / "blank.png")], subjects + ["b"]
    df = pd.DataFrame({"path": paths, "subject": subjects, "sequence": "",
                       "frame": 0, "AU01": 1})
    return write_manifest(df, tmp_path / "m.parquet")


def _check_face(points, size, tol=0.04):
    """Eye anchors at the aligner's canonical eye positions (within ``tol`` of the crop side);
    eyes above nose above mouth."""
    from hiva.data.align import EYE_LEFT, EYE_RIGHT
    from hiva.regions import anchors

    a = anchors(points, "mediapipe-478")
    tol = tol * size
    assert np.abs(a["eye_r"] - np.array(EYE_LEFT) * size).max() < tol, a["eye_r"]
    assert np.abs(a["eye_l"] - np.array(EYE_RIGHT) * size).max() < tol, a["eye_l"]
    eyes_y = (a["eye_r"][1] + a["eye_l"][1]) / 2
    assert eyes_y < a["nose_tip"][1] < a["mouth"][1] < a["chin"][1]
    assert a["mouth_corner_r"][0] < a["mouth"][0] < a["mouth_corner_l"][0]


def test_map_points_follows_warp_affine():
    """A blob moved by cv2.warpAffine lands where map_points sends its centre (pixel i spans
    [i, i+1])."""
    import cv2

    from hiva.data.align import map_points

    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    cx, cy = 20.5, 31.0  # continuous pixels: between pixel centres on purpose
    img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
    M = cv2.getRotationMatrix2D((30.0, 25.0), 20.0, 2.5)
    M[:, 2] += (7.0, -3.0)
    out = cv2.warpAffine(img, M, (160, 160), flags=cv2.INTER_LINEAR)
    oy, ox = np.mgrid[0:160, 0:160] + 0.5
    centroid = np.array([(out * ox).sum(), (out * oy).sum()]) / out.sum()
    assert np.abs(map_points([(cx, cy)], M)[0] - centroid).max() < 0.05
    # the same point through OpenCV's own convention is half a (scaled) pixel off
    naive = M[:, :2] @ (cx, cy) + M[:, 2]
    assert np.abs(naive - centroid).max() > 0.5


@pytest.mark.integration
def test_align_writes_landmarks_and_reuses_cache(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe")
    import hiva.data.align as align
    from hiva.data.align import AlignConfig, landmarks_path, run

    cfg = AlignConfig(manifest=str(_astro_manifest(tmp_path)), out=str(tmp_path / "al"))
    out = run(cfg)
    res = read_manifest(out)
    meta = manifest_meta(out)
    assert meta["landmark_scheme"] == "mediapipe-478" and meta["landmarks_missing"] == 0
    assert list(res["subject"]) == ["a"]  # the blank frame is skipped
    marks = np.asarray(res["landmarks"][0], dtype=np.float64)
    assert marks.shape == (956,) and np.isfinite(marks).all()
    assert marks.min() > -0.1 * cfg.size and marks.max() < 1.1 * cfg.size
    _check_face(marks.reshape(-1, 2), cfg.size)
    crop = res["path"][0]
    side = landmarks_path(Path(crop))
    assert side.is_file()

    # A rerun reads the crop and its landmarks from the cache: the mesh does not run (the blank
    # frame, not cached, is looked at again and again has no face).
    def no_mesh(self, rgb, box):
        raise AssertionError("the rerun should not run the mesh")

    with monkeypatch.context() as m:
        m.setattr(align.FaceAligner, "mesh", no_mesh)
        again = read_manifest(run(cfg))
    np.testing.assert_array_equal(np.asarray(again["landmarks"][0]), res["landmarks"][0])
    assert manifest_meta(out)["landmark_scheme"] == "mediapipe-478"

    # A crop cached by an older hiva (no landmarks beside it) is redone from its frame.
    side.unlink()
    redone = read_manifest(run(cfg))
    assert side.is_file()
    np.testing.assert_allclose(np.asarray(redone["landmarks"][0]), res["landmarks"][0],
                               atol=1e-3)


@pytest.mark.integration
def test_align_mesh_miss_is_nan_and_counted(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe")
    import hiva.data.align as align
    from hiva.data.align import AlignConfig, run

    monkeypatch.setattr(align.FaceAligner, "mesh", lambda self, rgb, box: None)
    cfg = AlignConfig(manifest=str(_astro_manifest(tmp_path, blank=False)),
                      out=str(tmp_path / "al"), size=128)
    for _ in range(2):  # fresh, then from the cache
        out = run(cfg)
        res = read_manifest(out)
        assert len(res) == 1 and Image.open(res["path"][0]).size == (128, 128)  # crop kept
        marks = np.asarray(res["landmarks"][0], dtype=np.float64)
        assert marks.shape == (956,) and np.isnan(marks).all()
        assert manifest_meta(out)["landmarks_missing"] == 1


@pytest.mark.integration
def test_aligner_landmarks_of_the_picked_face():
    """The mesh of the picked face, also when it is too small for the mesh's own detector in
    the whole frame (the close-up pass) and when a second face is in the frame."""
    pytest.importorskip("mediapipe")
    import cv2
    from skimage import data

    from hiva.data.align import FaceAligner

    img = data.astronaut()
    aligner = FaceAligner(size=256)
    crop, info = aligner(img)
    assert info["landmarks"].shape == (478, 2) and info["landmarks"].dtype == np.float32
    _check_face(info["landmarks"], 256)
    # the mesh run on the crop itself finds the points the transform carried there
    on_crop = aligner.mesh(crop, (0, 0, 256, 256))
    assert np.median(np.abs(info["landmarks"] - on_crop)) < 2.0
    crop_only = FaceAligner(size=256, landmarks=False)  # no mesh at all
    assert crop_only(img)[1]["landmarks"] is None and crop_only._mesh is None

    far = np.full((1200, 1200, 3), 120, np.uint8)  # the face is ~8% of the frame
    far[600:1112, 600:1112] = img
    crop, info = aligner(far)
    assert info["landmarks"] is not None
    # the detector's eye points are coarse on a face this small: the crop sits ~4% off
    _check_face(info["landmarks"], 256, tol=0.07)
    assert np.median(np.abs(info["landmarks"] - aligner.mesh(crop, (0, 0, 256, 256)))) < 2.0

    # Two faces the mesh both finds in the frame: each detection gets its own face's points.
    face = img[20:330, 120:380]
    two = np.full((400, 700, 3), 120, np.uint8)
    two[20:330, 400:660] = face
    two[40:319, 40:274] = cv2.resize(face, (234, 279), interpolation=cv2.INTER_AREA)
    faces = aligner.detect(two)
    assert len(faces) == 2
    for f in faces:
        x, y, w, h = f["box"]
        cx, cy = aligner.mesh(two, f["box"]).mean(0)
        assert x < cx < x + w and y < cy < y + h
    crop, info = aligner(two)
    _check_face(info["landmarks"], 256)
    assert np.median(np.abs(info["landmarks"] - aligner.mesh(crop, (0, 0, 256, 256)))) < 2.0
