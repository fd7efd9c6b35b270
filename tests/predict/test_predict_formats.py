"""Every face of a frame, the openface / feat layouts, streaming ``save=``, in-memory frames and
``skip_frames`` (hiva.predict.detector, hiva.predict.table) on the tiny trained run."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.predict.table import OPENFACE_C, OPENFACE_R
from tests.predict.helpers import FPS, TINY_AUS, VIDEO_PLAN, astronaut

P_COLS = [f"{au_column(a)}_p" for a in TINY_AUS]
UNIT = dict(check_exact=False, rtol=0, atol=1.01e-6)  # probabilities are rounded to 6 decimals


@pytest.fixture(scope="module")
def det(tiny_run):
    pytest.importorskip("mediapipe")
    import hiva

    return hiva.Detector(tiny_run, align=True, batch_size=3)


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory) -> dict:
    """A photo holding two faces side by side (the right one smaller), and one with a face and a
    blank half."""
    root = tmp_path_factory.mktemp("two_faces")
    big, small = astronaut(256), astronaut(256)
    small = np.asarray(Image.fromarray(small).resize((224, 224)))
    right = np.full((256, 256, 3), 90, np.uint8)
    right[16:240, 16:240] = small
    two = np.concatenate([big, right], axis=1)
    Image.fromarray(two).save(root / "two.png")
    return {"two": root / "two.png", "rgb": two}


def test_every_face_is_a_row_largest_first(det, two_faces, tiny_run):
    df = det.detect(two_faces["two"])
    assert len(df) == 2 and df["face_id"].tolist() == [0, 1]
    assert (df["success"] == 1).all() and (df["confidence"] > 0.5).all()
    area = df["face_width"] * df["face_height"]
    assert area[0] > area[1]  # face 0 is the largest
    assert df["face_x"][0] < 256 <= df["face_x"][1]  # and it is the left one
    assert df[P_COLS].notna().all().all()
    # the two crops are different faces: their scores differ
    assert not np.allclose(df[P_COLS].iloc[0], df[P_COLS].iloc[1])
    # face 0 is the face a single-face aligner picks: the same scores as prepare() gives
    crop, conf = det.prepare(two_faces["rgb"])
    np.testing.assert_allclose(df[P_COLS].iloc[0], det.score([crop])[0], atol=1.01e-6)
    assert df["confidence"][0] == pytest.approx(conf)
    import hiva

    one = hiva.Detector(tiny_run, align=True, max_faces=1).detect(two_faces["two"])
    assert len(one) == 1
    pd.testing.assert_frame_equal(one, df.iloc[:1], **UNIT)


def test_whole_frames_have_no_box(tiny_run, media):
    import hiva

    df = hiva.Detector(tiny_run, align=False).detect(media["face"])
    assert len(df) == 1 and df["success"][0] == 1
    assert df[["confidence", "face_x", "face_y", "face_width", "face_height"]].isna().all().all()


def read_openface_csv(path) -> dict:
    """A reader written to OpenFace 2's documented output format (wiki: Output-Format), as
    analysis scripts read it: names may carry a leading space; the first five columns are frame,
    face_id, timestamp, confidence, success; AU presence is ``AUxx_c`` (0/1) and intensity
    ``AUxx_r``. Returns the parsed columns."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    head = [h.strip() for h in rows[0]]
    assert head[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    body = rows[1:]
    col = {h: [r[i] for r in body] for i, h in enumerate(head)}
    out = {"frame": [int(v) for v in col["frame"]], "face_id": [int(v) for v in col["face_id"]],
           "timestamp": [float(v) for v in col["timestamp"]],
           "confidence": [float(v) if v else np.nan for v in col["confidence"]],
           "success": [int(v) for v in col["success"]], "presence": {}, "intensity": {}}
    for h in head:
        m = re.fullmatch(r"AU(\d\d)_([cr])", h)
        if m:
            kind = "presence" if m.group(2) == "c" else "intensity"
            out[kind][int(m.group(1))] = [float(v) if v else np.nan for v in col[h]]
    return out


def test_openface_layout_reads_as_openface(det, media, two_faces, tmp_path):
    ref = det.detect([media["video"], two_faces["two"]])
    f = det.detect([media["video"], two_faces["two"]], save=tmp_path / "of.csv",
                   format="openface")
    got = read_openface_csv(f)
    assert got["frame"] == ref["frame"].tolist() and got["face_id"] == ref["face_id"].tolist()
    np.testing.assert_allclose(got["timestamp"], ref["timestamp"])
    np.testing.assert_allclose(got["confidence"], ref["confidence"], atol=1e-9)
    assert got["success"] == ref["success"].tolist()
    # OpenFace's own AU columns, all of them; empty where the model has no value (an AU it was
    # not trained on; every intensity of a model without the intensity head)
    assert sorted(got["presence"]) == sorted(OPENFACE_C)
    assert sorted(got["intensity"]) == sorted(OPENFACE_R)
    assert all(np.isnan(v).all() for v in got["intensity"].values())
    for a in OPENFACE_C:
        want = (ref[f"{au_column(a)}_c"].astype("float64").to_numpy() if a in TINY_AUS
                else np.full(len(ref), np.nan))
        np.testing.assert_array_equal(got["presence"][a], want)
    df = pd.read_csv(f)
    assert list(df.columns) == ["frame", "face_id", "timestamp", "confidence", "success",
                                "face_x", "face_y", "face_width", "face_height",
                                *(f"{au_column(a)}_r" for a in OPENFACE_R),
                                *(f"{au_column(a)}_c" for a in OPENFACE_C),
                                *P_COLS, "track_id", "input"]
    assert df["track_id"].tolist() == ref["track_id"].tolist()
    np.testing.assert_allclose(df[P_COLS], ref[P_COLS], atol=1.01e-6)


def test_feat_layout(det, two_faces, tmp_path):
    ref = det.detect(two_faces["two"])
    df = det.detect(two_faces["two"], format="feat")
    aus = [c for c in df.columns if "AU" in c]  # how py-feat's read_feat finds the AU columns
    assert aus == [au_column(a) for a in TINY_AUS]
    assert list(df.columns[:6]) == ["frame", "FaceRectX", "FaceRectY", "FaceRectWidth",
                                    "FaceRectHeight", "FaceScore"]
    np.testing.assert_array_equal(df[aus].to_numpy(), ref[P_COLS].to_numpy())
    np.testing.assert_array_equal(df["FaceScore"], ref["confidence"])
    np.testing.assert_array_equal(df["FaceRectWidth"], ref["face_width"])
    saved = pd.read_csv(det.detect(two_faces["two"], save=tmp_path / "f.csv", format="feat"))
    assert list(saved.columns) == list(df.columns)
    np.testing.assert_allclose(saved[aus], df[aus], atol=1.01e-6)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_save_streams_the_same_rows(det, media, two_faces, tmp_path, suffix):
    from hiva.predict.table import read_table

    inputs = [media["video"], media["folder"], two_faces["two"]]
    ref = det.detect(inputs)
    out = det.detect(inputs, save=tmp_path / f"au{suffix}", batch_size=2)
    assert out == tmp_path / f"au{suffix}" and det.counts["rows"] == len(ref)
    assert det.unreadable[0][0].endswith("broken.jpg")
    pd.testing.assert_frame_equal(read_table(out), ref, check_dtype=suffix == ".parquet",
                                  **UNIT)
    assert not list(tmp_path.glob(".*partial"))


def test_save_leaves_no_file_when_killed(det, media, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = det.forward

    def dies(x, regions=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(x, regions)

    monkeypatch.setattr(det, "forward", dies)
    with pytest.raises(KeyboardInterrupt):
        det.detect(media["video"], save=tmp_path / "au.csv", batch_size=1)
    assert list(tmp_path.iterdir()) == []  # neither a half table nor its partial file


def test_frames_in_memory_and_skip_frames(det, media, tiny_run):
    from hiva.predict.media import iter_video, read_image

    files = sorted(str(p) for p in media["folder"].rglob("img*.jpg"))
    ref = det.detect(files)
    arrays = [read_image(p) for p in files]
    mixed = [arrays[0], Image.fromarray(arrays[1]), *files[2:]]
    got = det.detect(mixed)
    assert got["input"].tolist()[:2] == ["<array 0>", "<array 1>"]
    assert np.isnan(got["timestamp"][0])
    pd.testing.assert_frame_equal(got.drop(columns=["input", "timestamp"]),
                                  ref.drop(columns=["input", "timestamp"]), **UNIT)
    # every 2nd frame of the video: the same rows as those frames of the full run
    full = det.detect(media["video"])
    half = det.detect(media["video"], skip_frames=2, batch_size=1)
    assert half["frame"].tolist() == list(range(0, len(VIDEO_PLAN), 2))
    keep = full[full["frame"] % 2 == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(half, keep, **UNIT)
    np.testing.assert_allclose(half["timestamp"], half["frame"] / FPS, atol=1e-6)
    # a clip in memory (T×H×W×3) is frames of one input
    clip = np.stack([rgb for _, _, rgb in iter_video(str(media["video"]))])
    mem = det.detect(clip)
    assert (mem["input"] == "<array 0>").all()
    pd.testing.assert_frame_equal(mem.drop(columns=["input", "timestamp"]),
                                  full.drop(columns=["input", "timestamp"]), **UNIT)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 5), np.uint8), "H×W×3"),
])
def test_bad_arrays_are_one_line(det, bad, needle):
    with pytest.raises(HivaError, match=needle):
        det.detect(bad)


def test_python_settings_are_named_as_arguments(det, tiny_run, tmp_path):
    """The CLI's rules (``hiva.predict.settings``), named as Detector's arguments."""
    import hiva

    frame = np.zeros((32, 32, 3), np.uint8)
    for kw, needle in [(dict(batch_size=0), "batch_size must be ≥ 1, got 0"),
                       (dict(max_faces=0), "max_faces must be ≥ 1"),
                       (dict(weights="final"), "weights 'final': use best or last"),
                       (dict(threshold=1.5), r"threshold 1\.5: pass auto or a number in")]:
        with pytest.raises(HivaError, match=needle):
            hiva.Detector(tiny_run, **kw)
    with pytest.raises(HivaError, match="format 'csv': use one of hiva, openface, feat"):
        det.detect(frame, format="csv")
    with pytest.raises(HivaError, match=r"save=.*x\.txt: end it in \.csv or \.parquet"):
        det.detect(frame, save=tmp_path / "x.txt")
    with pytest.raises(HivaError, match="skip_frames must be ≥ 1, got 0"):
        det.detect(frame, skip_frames=0)
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("args, needle", [
    (["--format", "csv"], "--format 'csv': use one of hiva, openface, feat"),
    (["--max-faces", "0"], "--max-faces must be ≥ 1"),
    (["--skip-frames", "0"], "--skip-frames must be ≥ 1"),
])
def test_cli_flags_checked(args, needle, tiny_run, media, cli, tmp_path):
    r = cli("predict", media["face"], "--checkpoint", tiny_run, "--out", tmp_path / "a.csv",
            *args, check=False)
    assert r.returncode != 0
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_cli_openface_max_faces(tiny_run, two_faces, cli, tmp_path):
    cli("predict", two_faces["two"], "--checkpoint", tiny_run, "--out", tmp_path / "a.csv",
        "--align", "--format", "openface", "--max-faces", "1", "--no-progress")
    df = pd.read_csv(tmp_path / "a.csv")
    assert len(df) == 1 and list(df.columns[:5]) == ["frame", "face_id", "timestamp",
                                                     "confidence", "success"]
