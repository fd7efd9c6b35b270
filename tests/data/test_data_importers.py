from __future__ import annotations

import pandas as pd
import pytest

from hiva.data.importers import (
    export_megraphau,
    import_bp4d,
    import_csv,
    import_disfa,
    import_megraphau,
)
from hiva.data.manifest import manifest_aus, read_manifest, write_manifest
from hiva.errors import HivaError


def _labels(df, col):
    return [None if pd.isna(v) else int(v) for v in df[col]]


def test_bp4d_exact(bp4d_root):
    df, rep = import_bp4d(bp4d_root)
    assert list(df["subject"]) == ["F001", "F001", "F001", "M001"]
    assert list(df["sequence"]) == ["T1", "T1", "T1", "T2"]
    assert list(df["frame"]) == [10, 11, 12, 5]
    assert manifest_aus(df) == (1, 2, 4, 12)
    assert _labels(df, "AU01") == [1, 0, None, 0]
    assert _labels(df, "AU02") == [0, 0, 1, None]
    assert _labels(df, "AU04") == [None, 1, 0, 0]
    assert _labels(df, "AU12") == [1, None, 0, 1]
    assert rep["labelled frames with no image"] == 1
    assert df["path"].iloc[0].endswith("img/F001/T1/10.jpg")


def test_bp4d_manifest_roundtrip(bp4d_root, tmp_path):
    df, _ = import_bp4d(bp4d_root)
    out = write_manifest(df, bp4d_root / "manifest.parquet", {"source": "bp4d"})
    raw = pd.read_parquet(out)
    assert raw["path"].iloc[0] == "img/F001/T1/10.jpg"  # stored relative to the manifest
    back = read_manifest(out)
    assert back["path"].iloc[0] == df["path"].iloc[0]
    assert str(back["AU01"].dtype) == "Int8"
    assert _labels(back, "AU04") == _labels(df, "AU04")


def test_disfa_exact(disfa_root):
    df, rep = import_disfa(disfa_root)
    assert list(df["subject"]) == ["SN001"] * 3 + ["SN002"]
    assert list(df["frame"]) == [0, 1, 2, 0]  # label frame k → image k-1
    assert _labels(df, "AU01") == [0, 0, 1, 1]  # positive when intensity >= 2
    assert _labels(df, "AU12") == [1, 1, 0, None]
    assert list(df["AU01_intensity"]) == [0.0, 1.0, 2.0, 4.0]
    assert rep["labelled frames with no image"] == 2  # SN001 frame 4, SN002 frame 2
    df1, _ = import_disfa(disfa_root, threshold=1)
    assert _labels(df1, "AU01") == [0, 1, 1, 1]


def test_megraphau_import_and_export(megraphau_dirs, tmp_path):
    lists, images = megraphau_dirs
    df, rep = import_megraphau(lists, images)
    assert rep["listed images not found"] == 1
    assert list(df["subject"]) == ["SN002", "SN002", "SN013"]
    assert list(df["fold"]) == [1, 1, 2]
    assert manifest_aus(df) == (1, 2, 4, 6, 9, 12, 25, 26)
    assert _labels(df, "AU01") == [1, 0, 0]
    assert _labels(df, "AU12") == [1, 0, 0]
    assert _labels(df, "AU26") == [0, 1, 0]
    out = tmp_path / "exported"
    files = export_megraphau(df, out, "DISFA", manifest_aus(df), df["fold"], images)
    assert len(files) == 8
    assert (out / "DISFA_test_img_path_fold1.txt").read_text() == "SN002/0.png\nSN002/1.png\n"
    assert (out / "DISFA_train_label_fold1.txt").read_text() == "0 0 1 0 1 0 0 0\n"
    again, _ = import_megraphau(out, images)  # the export reads back to the same labels
    assert _labels(again, "AU26") == _labels(df, "AU26")


def test_csv_import(tmp_path):
    from PIL import Image

    for n in ("a", "b"):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{n}.png")
    (tmp_path / "labels.csv").write_text(
        "path,subject,AU1,au12,AU04_intensity\na.png,s1,1,,2.5\nb.png,s2,0,1,0\nc.png,s3,1,1,1\n")
    df, rep = import_csv(tmp_path / "labels.csv")
    assert rep["listed images not found"] == 1
    assert list(df["subject"]) == ["s1", "s2"]
    assert _labels(df, "AU01") == [1, 0]
    assert _labels(df, "AU12") == [None, 1]


def test_errors_are_one_line(tmp_path):
    with pytest.raises(HivaError, match="--images"):
        import_bp4d(tmp_path)
    (tmp_path / "m.parquet").write_text("not parquet")
    with pytest.raises(HivaError, match="Parquet"):
        read_manifest(tmp_path / "m.parquet")
    with pytest.raises(HivaError, match="subject"):
        write_manifest(pd.DataFrame({"path": ["x"], "AU01": [1]}), tmp_path / "x.parquet")


def test_disfa_from_left_videos(disfa_root):
    import shutil

    import av
    import numpy as np

    shutil.rmtree(disfa_root / "img")
    vids = disfa_root / "Videos_LeftCamera"
    vids.mkdir()
    for subject, n in (("SN001", 3), ("SN002", 1)):
        with av.open(str(vids / f"LeftVideo{subject}_comp.avi"), "w") as box:
            st = box.add_stream("mpeg4", rate=25)
            st.width, st.height, st.pix_fmt = 32, 32, "yuv420p"
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), "rgb24")
                box.mux(st.encode(frame))
            box.mux(st.encode())
    df, rep = import_disfa(disfa_root)
    assert list(df["frame"]) == [0, 1, 2, 0]
    assert (disfa_root / "img" / "SN001" / "2.png").is_file()
    assert not (disfa_root / "img" / "SN001" / ".partial").exists()
    assert _labels(df, "AU01") == [0, 0, 1, 1]
