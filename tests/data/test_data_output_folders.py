"""``hiva data synth`` and ``hiva data align`` write only folders that are theirs: a user's
folder holding a ``config.yaml`` or ``README.md`` is refused and left as it was, and a run
killed part way is taken back by its rerun (``hiva.runtime.claim_dir``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import hiva.data.align as align
import hiva.data.synth as synth
from hiva.data.manifest import read_manifest, write_manifest
from hiva.runtime import WRITING
from tests.helpers import invoke

SYNTH = ("--subjects", "1", "--per-subject", "2", "--size", "64", "--workers", "1")


def _users_folder(path):
    path.mkdir()
    (path / "config.yaml").write_text("lr: 0.1\nmodel: mine\n")
    (path / "README.md").write_text("# my project\n")
    return {p.name: p.read_text() for p in path.iterdir()}


def test_synth_refuses_a_folder_of_the_users_and_changes_nothing(tmp_path):
    before = _users_folder(tmp_path / "proj")
    code, out = invoke("data", "synth", "--out", tmp_path / "proj", *SYNTH)
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert "config.yaml" in out and "did not write" in out
    assert {p.name: p.read_text() for p in (tmp_path / "proj").iterdir()} == before


def test_synth_killed_before_its_last_file_is_taken_back_by_its_rerun(tmp_path, monkeypatch):
    out = tmp_path / "s"

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(synth, "write_grids", killed)
        with pytest.raises(KeyboardInterrupt):
            synth.render_synthetic(out, 1, 2, size=64, workers=1, progress=False)
    assert (out / WRITING).is_file() and (out / "README.md").is_file()
    df = read_manifest(synth.render_synthetic(out, 1, 2, size=64, workers=1, progress=False))
    assert len(df) == 2 and not (out / WRITING).exists()
    assert (out / "grids").is_dir()
    # and a finished set is rerun in place (resumes, nothing doubles)
    code, text = invoke("data", "synth", "--out", out, *SYNTH)
    assert code == 0, text
    assert len(read_manifest(out / "manifest.parquet")) == 2


class _FakeAligner:
    """Every readable image is a face: a grey crop, no landmarks (no MediaPipe needed)."""

    def __init__(self, size, *a):
        self.size = size

    def __call__(self, rgb):
        return np.full((self.size, self.size, 3), 128, np.uint8), {"landmarks": None}


def _frames(tmp_path):
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(tmp_path / "f.png")
    df = pd.DataFrame({"path": [str(tmp_path / "f.png")], "subject": ["a"], "sequence": "",
                       "frame": [0], "AU01": [1]})
    return write_manifest(df, tmp_path / "m.parquet")


def test_align_refuses_a_folder_of_the_users_before_reading_a_frame(tmp_path, monkeypatch):
    manifest = _frames(tmp_path)
    before = _users_folder(tmp_path / "proj")

    def no_aligner(*a, **k):
        raise AssertionError("the folder is refused before any face is looked at")

    monkeypatch.setattr(align, "FaceAligner", no_aligner)
    code, out = invoke("data", "align", manifest, "--out", tmp_path / "proj")
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert "config.yaml" in out and "`hiva data align` did not write" in out
    assert {p.name: p.read_text() for p in (tmp_path / "proj").iterdir()} == before


def test_align_killed_part_way_is_taken_back_and_a_finished_one_rerun(tmp_path, monkeypatch):
    manifest = _frames(tmp_path)
    monkeypatch.setattr(align, "FaceAligner", _FakeAligner)
    cfg = align.AlignConfig(manifest=str(manifest), out=str(tmp_path / "al"), size=32)

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr("hiva.data.manifest.write_manifest", killed)
        with pytest.raises(KeyboardInterrupt):
            align.run(cfg)
    assert (tmp_path / "al" / WRITING).is_file() and (tmp_path / "al" / "crops").is_dir()
    assert len(read_manifest(align.run(cfg))) == 1
    assert not (tmp_path / "al" / WRITING).exists()
    assert len(read_manifest(align.run(cfg))) == 1  # finished: rerun in place
    # the same folder is not another command's to take
    code, out = invoke("data", "synth", "--out", tmp_path / "al", *SYNTH)
    assert code == 1 and "did not write" in out, out
