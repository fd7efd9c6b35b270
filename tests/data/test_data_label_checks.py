"""Labels are never lost or changed without a word (issue 31): one check shared by the importers
(``hiva.data.importing``: ``merge_labels``, ``one_row_per_frame``, ``require_known``), and a
training run refuses an AU it has no label for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiva.data import importing
from hiva.data.bp4d import import_bp4d
from hiva.data.csv_import import import_csv
from hiva.data.disfa import import_disfa
from hiva.errors import HivaError
from tests.data.conftest import _img
from tests.helpers import invoke


def _labels(df, col):
    return [None if pd.isna(v) else int(v) for v in df[col]]


def _csv(tmp_path, rows: str, n: int = 3):
    for i in range(n):
        _img(tmp_path / "s1" / f"{i}.png", 40 * i)
    f = tmp_path / "labels.csv"
    f.write_text(rows)
    return f


def test_csv_labels_that_are_not_numbers_are_reported_and_all_unknown_is_refused(tmp_path):
    f = _csv(tmp_path, "path,AU12\ns1/0.png,yes\ns1/1.png,no\ns1/2.png,yes\n")
    with pytest.raises(HivaError, match=r"every labels.csv label read is unknown in 3 frames; "
                       r"write the AU columns as 0/1.*3: label values that are not numbers"):
        import_csv(f)
    f.write_text("path,AU12\ns1/0.png,1\ns1/1.png,no\ns1/2.png,0\n")
    df, rep = import_csv(f)
    assert _labels(df, "AU12") == [1, None, 0]
    assert rep[importing.R_NOT_NUMBER] == 1 and importing.R_NOT_NUMBER in rep.kept


def test_csv_an_image_listed_twice_is_one_row_and_a_conflict_is_unknown(tmp_path):
    f = _csv(tmp_path, "path,AU1,AU12\ns1/0.png,1,1\ns1/1.png,0,1\ns1/0.png,1,0\n"
                       "s1/1.png,0,1\ns1/0.png,1,1\n")  # 0.png: AU12 1, 0, then 1 again
    df, rep = import_csv(f)
    assert list(df["path"].map(lambda p: p.rsplit("/", 1)[-1])) == ["0.png", "1.png"]
    assert _labels(df, "AU01") == [1, 0]  # both listings agree
    assert _labels(df, "AU12") == [None, 1]  # 1, 0, 1: no listing is trusted, in any order
    assert rep[importing.R_TWICE_CONFLICT] == 1 and rep[importing.R_TWICE_SAME] == 1


def test_csv_two_images_as_one_frame_are_skipped(tmp_path):
    f = _csv(tmp_path, "path,subject,frame,AU12\ns1/0.png,s1,5,1\ns1/1.png,s1,5,0\n"
                       "s1/2.png,s1,6,1\n")
    df, rep = import_csv(f)
    assert list(df["frame"]) == [6]
    assert rep[importing.R_FRAME_TWO_IMAGES] == 2
    assert any("0.png, 1.png" in ex for ex in rep.examples[importing.R_FRAME_TWO_IMAGES])


def test_disfa_a_frame_listed_twice_with_other_values_is_unknown(disfa_root):
    f = disfa_root / "ActionUnit_Labels" / "SN001" / "SN001_au12.txt"
    f.write_text("1,3\n2,2\n3,0\n4,0\n1,0\n3,0\n1,3\n")  # frame 1: 3, 0, 3; frame 3: 0, 0
    df, rep = import_disfa(disfa_root)
    sn1 = df[df.subject == "SN001"].set_index("frame")
    assert pd.isna(sn1.loc[0, "AU12"]) and np.isnan(sn1.loc[0, "AU12_intensity"])
    assert sn1.loc[2, "AU12"] == 0 and sn1.loc[1, "AU12"] == 1
    assert rep[importing.R_TWICE_CONFLICT] == 1 and rep[importing.R_TWICE_SAME] == 1
    assert "SN001/SN001_au12.txt:5" in rep.examples[importing.R_TWICE_CONFLICT]
    assert not any("AU12 left unknown" in line for line in rep.lines()
                   if "SN001" in line)  # the conflict is not misreported as a short file


def test_bp4d_a_frame_row_given_twice_with_other_values_is_unknown(bp4d_root):
    f = bp4d_root / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    f.write_text("0,1,2,4,12,99\n10,1,0,9,1,0\n11,0,0,1,9,0\n12,9,1,0,0,1\n10,1,1,9,1,0\n")
    df, rep = import_bp4d(bp4d_root)
    f001 = df[df.subject == "F001"].set_index("frame")
    assert f001.loc[10, "AU01"] == 1 and f001.loc[10, "AU12"] == 1  # agreed
    assert pd.isna(f001.loc[10, "AU02"])  # 0, then 1: it was the first (0) before
    assert rep[importing.R_TWICE_CONFLICT] == 1


def test_training_refuses_an_au_without_a_known_label(tmp_path):
    from hiva.train.config import TrainConfig
    from hiva.train.protocol import resolve_aus

    df = pd.DataFrame({"path": ["a", "b"], "subject": ["s", "t"], "sequence": "", "frame": [0, 1],
                       "AU01": pd.array([1, 0], dtype="Int8"),
                       "AU12": pd.array([None, None], dtype="Int8")})
    with pytest.raises(HivaError, match=r"AU12 has no known label in the data \(2 frames: "
                       r"every one unknown\); pass --aus 1 without it"):
        resolve_aus(TrainConfig(data="m.parquet", aus="1,12"), df)
    assert list(resolve_aus(TrainConfig(data="m.parquet", aus="1"), df)) == [1]



def test_data_import_never_replaces_a_users_file(bp4d_root, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, out = invoke("data", "import", "bp4d", "--root", bp4d_root, "--out", notes)
    assert code == 1 and "end it in .parquet" in out and "wrote" not in out
    assert notes.read_text() == "my notes\n"


def _frame(**cols):
    base = dict(path=["a.png", "b.png", "c.png"], subject=["s1", "s1", "s2"],
                sequence=["", "", ""], frame=[0, 1, 0], AU01=[1, 0, None])
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("cols, needle", [
    (dict(AU01=["yes", "no", None]), r"column AU01 holds values other than 0/1/null \(e\.g\. "
                                     r"'yes'\)"),
    (dict(AU01=[3, 0, None]), r"other than 0/1/null \(e\.g\. 3\)"),
    (dict(subject=["s1", None, "s2"]), r"column subject is empty in 1 of 3 rows \(e\.g\. row 1\)"),
    (dict(subject=["s1", " ", "s2"]), r"column subject is empty in 1 of 3 rows"),
    (dict(path=[None, "b.png", "c.png"]), r"column path is empty in 1 of 3 rows"),
    (dict(frame=["0", "x", "2"]), r"column frame holds values that are not whole numbers \(e\.g\. "
                              r"'x'\)"),
    (dict(frame=[0, 1.5, 2]), r"not whole numbers \(e\.g\. 1\.5\)"),
])
def test_a_manifest_row_is_never_changed_without_a_word(tmp_path, cols, needle):
    """A manifest written by hand (pandas, another tool): a label given as text read as unknown,
    a missing subject became the subject "None" (one fold of every such frame), a frame that is
    not a number was a ValueError traceback. Each is one line now, on write and on read."""
    from hiva.data.manifest import read_manifest, write_manifest

    with pytest.raises(HivaError, match=needle):
        write_manifest(_frame(**cols), tmp_path / "m.parquet")
    _frame(**cols).to_parquet(tmp_path / "hand.parquet")
    with pytest.raises(HivaError, match=needle):
        read_manifest(tmp_path / "hand.parquet")


def test_blank_and_null_labels_and_sequences_stay_unknown_and_empty(tmp_path):
    from hiva.data.manifest import read_manifest, write_manifest

    df = read_manifest(write_manifest(_frame(AU01=[1, "", None], sequence=[None, "t1", ""]),
                                      tmp_path / "m.parquet"))
    assert _labels(df, "AU01") == [1, None, None]
    assert list(df["sequence"]) == ["", "t1", ""]
