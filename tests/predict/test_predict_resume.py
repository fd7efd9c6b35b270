"""``hiva predict`` killed with SIGKILL part way and rerun gives the table an uninterrupted run
writes, byte for byte; a rerun with other settings is refused (hiva.predict.resume)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.predict.helpers import two_faces_video

# ``hiva predict`` as the CLI runs it, with parts of 3 rows or more and, under HANG_AFTER=k, a
# run that stops after writing its k-th part (the scorer threads still running) and sits there
# until the test kills it: the kill lands at the same place every time, with no race against a
# fast run. On this video, 2 parts end at frame 2, where face 0 is track 1: a resumed run that
# did not rebuild its tracks would number the faces afresh.
WRAPPED = r"""
import os, sys, threading
import hiva.predict.resume as resume
resume.CHUNK_ROWS = 3
real, hang = resume.Parts.write, int(os.environ.get("HANG_AFTER", "0"))
def write(self, *a, **k):
    real(self, *a, **k)
    if len(self.records) == hang:
        threading.Event().wait()
resume.Parts.write = write
from hiva.cli import main
sys.argv = ["hiva", *sys.argv[1:]]
main()
"""


def _env(**more) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
                **more)


def _wait_for(pattern, folder, proc, limit_s: float = 300.0) -> None:
    """Poll until ``folder`` holds a file matching ``pattern`` (the process must still run)."""
    end = time.monotonic() + limit_s
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no part was written"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def inputs(media, tmp_path_factory):
    pytest.importorskip("mediapipe")
    video = two_faces_video(tmp_path_factory.mktemp("resume") / "walk.mp4", n=24,
                            blank=(10, 11))
    return [media["face"], video, media["folder"]]  # the folder holds an unreadable file


def test_a_killed_predict_resumes_to_the_uninterrupted_table(inputs, tiny_run, cli, tmp_path):
    from hiva.predict.table import read_table

    args = ["predict", *inputs, "--checkpoint", tiny_run, "--align", "--min-face", "16",
            "--batch-size", "2"]
    ref = tmp_path / "ref" / "au.csv"
    cli(*args, "--out", ref, "--no-progress")

    out = tmp_path / "au.csv"
    parts = tmp_path / "au.csv.parts"
    cmd = [sys.executable, "-c", WRAPPED, *map(str, args), "--out", str(out)]
    proc = subprocess.Popen([*cmd, "--no-progress"], env=_env(HANG_AFTER="2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for("part-00001.json", parts, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert not out.exists()
    written = sorted(p.name for p in parts.glob("part-*.json"))
    assert written == ["part-00000.json", "part-00001.json"]

    # other settings over these parts: refused in one line naming the fix, the parts kept
    r = cli(*args[:-1], "3", "--out", out, "--no-progress", check=False)
    assert r.returncode == 1 and "--restart" in r.stderr and "Traceback" not in r.stderr
    assert re.search(r"^hiva: error: .*other settings \(--batch-size changed\)", r.stderr, re.M)
    assert sorted(p.name for p in parts.glob("part-*.json")) == written

    # the same command again: resumes, shows the frames done, and ends with the same table
    r = subprocess.run([*cmd, "--progress"], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    done = int(re.search(r"resuming from \S+: (\d+) frames written", r.stderr).group(1))
    assert 0 < done < 1 + 24 and re.search(rf"\| *{done}/\d+ ", r.stderr), r.stderr
    assert out.read_bytes() == ref.read_bytes()  # every row, id, track and probability
    assert not parts.exists()
    df = read_table(out)
    assert set(df.loc[df["success"] == 1, "track_id"]) >= {0, 1}
    assert "1 unreadable files skipped" in r.stderr


def test_restart_discards_parts_and_a_foreign_folder_is_left_alone(media, tiny_run, tmp_path):
    import json

    from tests.helpers import invoke

    out = tmp_path / "au.parquet"
    parts = tmp_path / "au.parquet.parts"
    parts.mkdir()
    (parts / "notes.txt").write_text("mine")
    args = ["predict", media["face"], "--checkpoint", tiny_run, "--no-align", "--out", out,
            "--no-progress"]
    code, msg = invoke(*args)
    assert code == 1 and "is not hiva predict's parts folder" in msg and not out.exists()
    (parts / "notes.txt").unlink()
    # parts of a run with other settings: refused, then discarded by --restart
    (parts / "settings.json").write_text(json.dumps({"schema": 1, "batch_size": 99}))
    (parts / "part-00000.json").write_text(json.dumps({"end": [5, 0], "rows": 1, "frames": 1,
                                                       "unreadable": []}))
    code, msg = invoke(*args)
    assert code == 1 and "--restart" in msg and not out.exists()
    code, msg = invoke(*args, "--restart")
    assert code == 0, msg
    assert out.is_file() and not parts.exists()
