"""hiva export with a bad --to: one clear line, nothing written, no traceback."""

from __future__ import annotations

import pytest

from hiva.errors import HivaError


def test_export_to_a_file_is_one_line(tiny_run, cli, tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("mine")
    r = cli("export", tiny_run, "--to", f, check=False)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert err[-1] == f"hiva: error: --to {f} is a file, not a folder; pass a folder path (a " \
                      "new one is made)"
    assert f.read_text() == "mine"


def test_export_to_a_read_only_folder(tiny_run, read_only_dir):
    from hiva.predict.export import export

    ro = read_only_dir
    with pytest.raises(HivaError, match=r"cannot write into --to .*ro \(Permission denied\)"):
        export(tiny_run, ro)
    with pytest.raises(HivaError, match=r"cannot create --to .*ro/x \(Permission denied\)"):
        export(tiny_run, ro / "x")
    assert list(ro.iterdir()) == []


def test_an_export_killed_before_its_last_file_is_taken_back_by_its_rerun(tiny_run, tmp_path,
                                                                          monkeypatch):
    """Killed between the weights and config.json, the folder held model.safetensors and no
    config.json: its rerun refused it as "not an earlier export" (issue 31). The folder is
    marked before the first file, so the rerun finishes it; another command's half-written
    folder and a user's folder stay refused."""
    import hiva.predict.export as ex
    from hiva.runs import is_export
    from hiva.runtime import WRITING

    to = tmp_path / "exp"
    real = ex.write_export
    monkeypatch.setattr(ex, "write_export", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ex.export(tiny_run, to)
    assert (to / "model.safetensors").is_file() and not is_export(to) and (to / WRITING).exists()
    monkeypatch.setattr(ex, "write_export", real)
    ex.export(tiny_run, to)
    assert is_export(to) and not (to / WRITING).exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(HivaError, match=r"--to .*mine holds notes.txt that `hiva export` or "
                       r"`hiva import-checkpoint` did not write; pass a new or empty folder"):
        ex.export(tiny_run, mine)
    half = tmp_path / "half"
    half.mkdir()
    (half / WRITING).write_text("`hiva embed`\n")
    with pytest.raises(HivaError, match=r"is being written by another command \(`hiva embed`"):
        ex.export(tiny_run, half)
