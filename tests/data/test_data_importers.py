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
from hiva.data.importing import R_BAD_ROW, R_EMPTY, R_NO_FRAME_COL, R_NO_IMAGE, R_NO_ROWS
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
    # SN002's frame 1 has an AU1 label and none for AU12: kept, AU12 unknown, and counted
    reason = "frames with no label for AU12 (label file missing or short; AU12 left unknown)"
    assert rep[reason] == 1
    df1, _ = import_disfa(disfa_root, threshold=1)
    assert _labels(df1, "AU01") == [0, 1, 1, 1]


def test_megraphau_import_and_export(megraphau_dirs, tmp_path):
    from collections import Counter

    lists, images = megraphau_dirs
    df, rep = import_megraphau(lists, images)
    assert rep["listed images not found"] == 1
    assert list(df["subject"]) == ["SN003", "SN003", "SN013"]
    assert list(df["sequence"]) == ["left"] * 3  # DISFA lists: the left camera
    assert list(df["fold"]) == [1, 1, 2]
    assert manifest_aus(df) == (1, 2, 4, 6, 9, 12, 25, 26)
    assert _labels(df, "AU01") == [1, 0, 0]
    assert _labels(df, "AU12") == [1, 0, 0]
    assert _labels(df, "AU26") == [0, 1, 0]
    out = tmp_path / "exported"
    report: Counter = Counter()
    files = export_megraphau(df, out, "DISFA", manifest_aus(df), df["fold"], images,
                             report=report)
    assert sorted(f.name for f in files) == sorted(
        f"DISFA_{x}_fold{k}.txt" for k in (1, 2)
        for x in ("train_img_path", "train_label", "test_img_path", "test_label",
                  "train_weight", "weight", "train_AU_relation"))
    assert (out / "DISFA_test_img_path_fold1.txt").read_text() == "SN003/0.png\nSN003/1.png\n"
    assert (out / "DISFA_train_label_fold1.txt").read_text() == "0 0 1 0 1 0 0 0\n"
    # fold 1 trains on SN013/7.png alone: AU1 never occurs there, its weight is not finite
    assert any(k.startswith("fold 1: AU1 has no positive") for k in report)
    again, _ = import_megraphau(out, images)  # the export reads back to the same labels
    assert _labels(again, "AU26") == _labels(df, "AU26")
    assert list(again["sequence"]) == ["left"] * 3


def test_megraphau_unknown_9_round_trips(tmp_path):
    from PIL import Image

    (tmp_path / "img" / "F001" / "T1").mkdir(parents=True)
    for fr in (7, 8):
        Image.new("RGB", (4, 4)).save(tmp_path / "img" / "F001" / "T1" / f"{fr}.jpg")
    lists = tmp_path / "list"
    lists.mkdir()
    rows = "1 9 0 0 0 0 0 0 0 0 0 1\n0 1 0 0 0 0 0 0 0 0 0 1\n"
    (lists / "BP4D_test_img_path_fold3.txt").write_text("F001/T1/7.jpg\nF001/T1/8.jpg\n")
    (lists / "BP4D_test_label_fold3.txt").write_text(rows)
    df, _ = import_megraphau(lists, tmp_path / "img")
    assert _labels(df, "AU02") == [None, 1] and df["sequence"].tolist() == ["T1", "T1"]
    export_megraphau(df, tmp_path / "out", "BP4D", (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
                     df["fold"], tmp_path / "img")
    assert (tmp_path / "out" / "BP4D_test_label_fold3.txt").read_text() == rows


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


def test_manifest_write_is_all_or_nothing(bp4d_root, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    df, _ = import_bp4d(bp4d_root)
    m = tmp_path / "m.parquet"
    write_manifest(df, m)

    def killed(table, where, **kw):  # the writer dies half way through the file
        where.write_bytes(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        write_manifest(df.iloc[:1], m)
    assert len(read_manifest(m)) == len(df)  # the old manifest, whole
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


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
    assert sorted(p.name for p in (disfa_root / "img" / "SN001").iterdir()) == [
        "0.png", "1.png", "2.png"]  # no temp file left beside the frames
    assert _labels(df, "AU01") == [0, 0, 1, 1]


# --- bad raw input: a named, counted skip (or one clear error), nothing lost silently ---------

def _occ(root):
    return root / "AUCoding" / "AU_OCC"


def test_bp4d_csv_missing_an_au_column_is_reported(bp4d_root):
    (_occ(bp4d_root) / "M001_T2.csv").write_text("0,1,2,4,99\n5,0,9,0,0\n")  # no column 12
    df, rep = import_bp4d(bp4d_root)
    assert _labels(df, "AU12") == [1, None, 0, None]  # M001 keeps its frame, AU12 unknown
    reason = "frames whose label file has no column 12 (AU12 left unknown)"
    assert rep[reason] == 1
    assert rep.examples[reason] == ["M001_T2.csv"]
    assert any(line.startswith(f"kept 1: {reason} (e.g. M001_T2.csv)") for line in rep.lines())


def test_bp4d_csv_cut_mid_row_skips_that_row(bp4d_root):
    (_occ(bp4d_root) / "F001_T1.csv").write_text(
        "0,1,2,4,12,99\n10,1,0,9,1,0\n11,0,0,1,9,0\n12,9,1")  # the file ends inside row 12
    df, rep = import_bp4d(bp4d_root)
    assert list(df["frame"]) == [10, 11, 5]
    assert rep[R_BAD_ROW] == 1
    assert rep.examples[R_BAD_ROW] == ["F001_T1.csv:4"]
    (_occ(bp4d_root) / "F001_T1.csv").write_text("0,1,2,4,12,99\n10,1,0,9,1,0\n11,0,0,,9,0\n")
    df, rep = import_bp4d(bp4d_root)  # an empty cell: that row, not a NaN → int traceback
    assert list(df["frame"]) == [10, 5] and rep[R_BAD_ROW] == 1


def test_bp4d_empty_and_header_only_csvs_are_counted(bp4d_root):
    for s in ("F002", "F003"):
        (bp4d_root / "img" / s / "T1").mkdir(parents=True)
    (_occ(bp4d_root) / "F002_T1.csv").write_bytes(b"")
    (_occ(bp4d_root) / "F003_T1.csv").write_text("0,1,2,4,1")  # cut inside the header
    df, rep = import_bp4d(bp4d_root)
    assert len(df) == 4  # the good files are all there
    assert rep[R_EMPTY] == 1 and rep.examples[R_EMPTY] == ["F002_T1.csv"]
    assert rep[R_NO_ROWS] == 1 and rep.examples[R_NO_ROWS] == ["F003_T1.csv"]


def test_bp4d_csv_without_frame_column_has_its_own_reason(bp4d_root):
    (_occ(bp4d_root) / "F001_T1.csv").write_text("1,2,4,12\n1,0,9,1\n0,0,1,9\n")
    df, rep = import_bp4d(bp4d_root)
    assert list(df["subject"]) == ["M001"]
    assert rep[R_NO_FRAME_COL] == 1 and rep.examples[R_NO_FRAME_COL] == ["F001_T1.csv"]
    assert rep[R_NO_IMAGE] == 0


def test_every_input_failing_is_an_error(bp4d_root, tmp_path):
    for f in _occ(bp4d_root).glob("*.csv"):
        f.write_bytes(b"")
    with pytest.raises(HivaError, match=r"no BP4D frame was imported .*empty label files.*"
                                        r"F001_T1\.csv") as e:
        import_bp4d(bp4d_root)
    assert "\n" not in str(e.value)
    (tmp_path / "labels.csv").write_text("path,AU1\nnope.png,1\n")
    with pytest.raises(HivaError, match="none of the 1 images"):
        import_csv(tmp_path / "labels.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(HivaError, match="empty.csv is empty"):
        import_csv(tmp_path / "empty.csv")


def test_disfa_short_label_files_are_counted(disfa_root):
    from PIL import Image

    for i in (3, 4, 5):  # SN001 now has images 0..5; its labels cover frames 1..4 (images 0..3)
        Image.new("RGB", (8, 8)).save(disfa_root / "img" / "SN001" / f"{i}.png")
    (disfa_root / "ActionUnit_Labels" / "SN001" / "SN001_au12.txt").write_text("1,3\n2,2\n")
    df, rep = import_disfa(disfa_root)
    assert list(df["frame"]) == [0, 1, 2, 3, 0]
    assert _labels(df, "AU12") == [1, 1, None, None, None]
    reason = "frames with no label for AU12 (label file missing or short; AU12 left unknown)"
    assert rep[reason] == 3  # SN001 frames 3 and 4 (its AU12 file is short), SN002 frame 1
    assert "SN001_au12.txt" in rep.examples[reason]
    assert rep["images with no label in any AU file (not imported)"] == 2  # SN001 images 4, 5
    assert rep[R_NO_IMAGE] == 1  # SN002 frame 2


def test_disfa_malformed_and_empty_label_files(disfa_root):
    (disfa_root / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt").write_text(
        "1,0\n2,x\n3,2\n4,5\n")
    (disfa_root / "ActionUnit_Labels" / "SN002" / "SN002_au12.txt").write_bytes(b"")
    df, rep = import_disfa(disfa_root)
    assert rep[R_BAD_ROW] == 1 and rep.examples[R_BAD_ROW] == ["SN001/SN001_au1.txt:2"]
    assert rep[R_EMPTY] == 1 and rep.examples[R_EMPTY] == ["SN002/SN002_au12.txt"]
    assert _labels(df, "AU01")[:3] == [0, None, 1]


def test_cli_report_names_files(bp4d_root, tmp_path):
    from typer.testing import CliRunner

    from hiva.cli import app

    (bp4d_root / "img" / "F002" / "T1").mkdir(parents=True)
    (_occ(bp4d_root) / "F002_T1.csv").write_bytes(b"")
    r = CliRunner().invoke(app, ["data", "import", "bp4d", "--root", str(bp4d_root), "--out",
                                 str(tmp_path / "b.parquet")])
    assert r.exit_code == 0, r.output
    assert f"skipped 1: {R_EMPTY} (e.g. F002_T1.csv)" in r.output
