"""One rule for every file a command is told to write (``hiva.runtime.output_file``), checked
before any work: a folder, a file of another kind or an unwritable place is one line naming the
flag; a missing folder is made (issue 31)."""

from __future__ import annotations

import pytest

from hiva.errors import HivaError
from tests.helpers import invoke


def test_the_rule(tmp_path):
    from hiva.runtime import output_file

    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(HivaError, match=r"--out .*dir.csv is a folder; pass a file path ending "
                       r"in \.csv or \.parquet"):
        output_file(tmp_path / "dir.csv", "--out", (".csv", ".parquet"))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HivaError, match=r"end it in \.parquet; .*notes.txt exists and is left"):
        output_file(tmp_path / "notes.txt", "--out", (".parquet",))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    got = output_file(tmp_path / "new" / "deeper" / "s.json", "--json", (".json",))
    assert got.parent.is_dir()


def test_report_checks_its_files_before_reading_runs(tmp_path):
    (tmp_path / "t.md").mkdir()
    code, out = invoke("report", tmp_path / "no-such-run", "--markdown", tmp_path / "t.md")
    assert code == 1 and "--markdown" in out and "is a folder" in out


def test_predict_to_a_folder_fails_before_scoring(tmp_path, monkeypatch):
    import hiva.predict.detector as detector

    img = tmp_path / "face.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(img)
    (tmp_path / "out.csv").mkdir()
    monkeypatch.setattr(detector, "Detector", lambda *a, **k: pytest.fail("model loaded"))
    code, out = invoke("predict", img, "--checkpoint", tmp_path, "--out", tmp_path / "out.csv")
    assert code == 1 and "--out" in out and "is a folder" in out
    assert not list(tmp_path.glob(".out.csv.partial"))


def test_explain_to_a_file_fails_before_the_model_loads(tmp_path, monkeypatch):
    from PIL import Image

    import hiva.predict.explain as explain

    img = tmp_path / "face.png"
    Image.new("RGB", (32, 32)).save(img)
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(explain, "Detector", lambda *a, **k: pytest.fail("model loaded"))
    code, out = invoke("explain", img, "--checkpoint", tmp_path, "--out", tmp_path / "notes.txt")
    assert code == 1 and "--out" in out and "is a file, not a folder" in out
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_megraphau_lists_into_a_file_or_unwritable_place_fail_before_reading(tmp_path,
                                                                            read_only_dir):
    (tmp_path / "notes.txt").write_text("mine")
    missing = tmp_path / "no-such.parquet"  # never read: the --out check comes first
    code, out = invoke("data", "export-megraphau", missing, "--out", tmp_path / "notes.txt")
    assert code == 1 and "--out" in out and "is a file, not a folder" in out, out
    assert (tmp_path / "notes.txt").read_text() == "mine"
    code, out = invoke("data", "export-megraphau", missing, "--out", read_only_dir / "lists")
    assert code == 1 and "cannot create --out" in out and "Traceback" not in out, out


def test_explain_refuses_a_folder_with_pictures_not_its_own(tmp_path, monkeypatch):
    """A user's grid.png or AU12.png is never replaced; an earlier explain's folder is."""
    from PIL import Image

    import hiva.predict.explain as explain

    img = tmp_path / "face.png"
    Image.new("RGB", (64, 64)).save(img)
    mine = tmp_path / "figures"
    mine.mkdir()
    (mine / "grid.png").write_bytes(b"my figure")
    monkeypatch.setattr(explain, "Detector", lambda *a, **k: pytest.fail("model loaded"))
    code, out = invoke("explain", img, "--checkpoint", tmp_path, "--out", mine)
    assert code == 1 and "holds grid.png that `hiva explain` did not write" in out, out
    assert (mine / "grid.png").read_bytes() == b"my figure"

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "grid.png").write_bytes(b"")
    (earlier / explain.EXPLAINED).write_text("{}")

    def loads(*a, **k):
        raise RuntimeError("the model loads: the folder was taken")

    monkeypatch.setattr(explain, "Detector", loads)
    code, out = invoke("explain", img, "--checkpoint", tmp_path, "--out", earlier)
    assert "the folder was taken" in out, out
