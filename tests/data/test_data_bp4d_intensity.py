"""BP4D's intensity codes in FERA 2015's layout (``AUCoding/AU_INT/AU12/F001_T1_AU12.csv``, lines
``frame,intensity``, 0-5, 9 = unknown) become ``AUxx_intensity``; the occurrence labels still
come from AU_OCC alone; bad lines are counted, never fatal."""

from __future__ import annotations

import math

import pandas as pd

from hiva.data.bp4d import R_INT_ODD, R_INT_ORPHAN
from hiva.data.importers import import_bp4d
from hiva.data.importing import R_BAD_ROW
from hiva.data.manifest import read_manifest, write_manifest


def _int(root, au: int, name: str, text: str) -> None:
    d = root / "AUCoding" / "AU_INT" / f"AU{au:02d}"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}_AU{au:02d}.csv").write_text(text)


def _vals(df, col):
    return [None if pd.isna(v) else float(v) for v in df[col]]


def test_bp4d_intensity_codes_with_unknowns_and_bad_lines(bp4d_root, tmp_path):
    """bp4d_root: F001/T1 frames 10-12 (AU_OCC AU12: 1, 9, 0), M001/T2 frame 5 (AU12: 1)."""
    without, _ = import_bp4d(bp4d_root)
    # AU12: frame 11 is 9 (unknown), a line cut short, a code 7 (not 0-5), frame 99 has no
    # AU_OCC row; M001 has no AU12 intensity file at all.
    _int(bp4d_root, 12, "F001_T1", "10,3\n11,9\n12,\n12,0\n13,4\n99,2\n")
    _int(bp4d_root, 12, "F001T1", "10,1\n")  # no <subject>_<task>_AUxx name: counted
    _int(bp4d_root, 4, "M001_T2", "5,7\nframe,intensity\n")
    df, rep = import_bp4d(bp4d_root)
    assert list(df["frame"]) == [10, 11, 12, 5]
    assert _vals(df, "AU12_intensity") == [3.0, None, 0.0, None]
    assert _vals(df, "AU04_intensity") == [None, None, None, None]  # 7: left unknown
    assert "AU01_intensity" not in df  # no AU_INT folder for AU1
    for col in ("AU01", "AU02", "AU04", "AU12"):  # occurrence: AU_OCC's, unchanged
        assert df[col].equals(without[col])
    assert rep[R_BAD_ROW] == 2  # "12," and the header-like line
    assert rep[R_INT_ODD] == 1 and rep[R_INT_ORPHAN] == 2  # frames 13 (no image) and 99
    assert rep["AU_INT files with no <subject>_<task>_AUxx name"] == 1
    assert any("AU12/F001_T1_AU12.csv:3" in ex for ex in rep.examples[R_BAD_ROW])
    # the intensities survive the manifest round trip as floats, unknown as NaN
    back = read_manifest(write_manifest(df, tmp_path / "m.parquet", {"source": "bp4d"}))
    assert back["AU12_intensity"].iloc[0] == 3.0 and math.isnan(back["AU12_intensity"].iloc[1])


def test_bp4d_without_au_int_has_no_intensity_columns(bp4d_root):
    df, rep = import_bp4d(bp4d_root)
    assert not [c for c in df if c.endswith("_intensity")]
    assert not [r for r in rep if "intensity" in r]


def test_cli_takes_an_au_int_folder_elsewhere(bp4d_root, tmp_path):
    from tests.helpers import invoke

    _int(tmp_path / "elsewhere", 12, "F001_T1", "10,2\n11,5\n12,1\n")
    src = tmp_path / "elsewhere" / "AUCoding" / "AU_INT"
    code, out = invoke("data", "import", "bp4d", "--root", str(bp4d_root), "--intensity",
                       str(src), "--out", str(tmp_path / "m.parquet"))
    assert code == 0, out
    df = read_manifest(tmp_path / "m.parquet")
    assert _vals(df, "AU12_intensity") == [2.0, 5.0, 1.0, None]
    code, out = invoke("data", "import", "bp4d", "--root", str(bp4d_root), "--intensity",
                       str(tmp_path / "nope"), "--out", str(tmp_path / "n.parquet"))
    assert code != 0 and "--intensity" in out and "Traceback" not in out
