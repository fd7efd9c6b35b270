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
