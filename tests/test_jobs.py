"""The shared launchers (hiva/jobs/): the ``--slurm`` settings, a job's log, lock and one-line
failure, several local jobs at once; and the launch flags of ``hiva generate-descriptions`` and
``hiva embed`` that do not fit, each one line before any work. The launchers end to end:
tests/generate/test_generate_launch.py, tests/embed/test_embed_launch.py and
tests/train/test_train_sweep.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from hiva.errors import HivaError
from hiva.jobs.local import run_local
from hiva.jobs.process import execute_command, lock
from hiva.jobs.settings import slurm_from_items
from hiva.jobs.tally import Tally


def test_slurm_items_read_like_a_sweep_files_section(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("slurm: {partition: gpu, time: '1:30:00', gpus_per_node: 1}\n")
    got = slurm_from_items([str(f), "time=90", "setup=[module load cuda]", "mem_gb=8.5"])
    assert got == {"partition": "gpu", "time": 90, "gpus_per_node": 1,
                   "setup": ["module load cuda"], "mem_gb": 8.5}
    with pytest.raises(HivaError, match=r"--slurm: slurm.gpus_per_node must be a whole number"):
        slurm_from_items(["gpus_per_node=two"])
    with pytest.raises(HivaError, match=r"--slurm nope.yaml: no such file; pass KEY=VALUE"):
        slurm_from_items(["nope.yaml"])


def _spec(tmp_path, name, code):
    return {"id": name, "cmd": [sys.executable, "-c", code], "log": str(tmp_path / f"{name}.log"),
            "lock": str(tmp_path / f"{name}.lock"), "header": f"test {name}"}


def test_local_jobs_at_once_each_counted_and_a_failure_names_its_log(tmp_path, capsys):
    specs = [_spec(tmp_path, "ok", "print('fine')"),
             _spec(tmp_path, "bad", "import sys; print('hiva: error: no data; pass --data'); "
                                    "sys.exit(1)")]
    tally = Tally(2, noun="shard")
    run_local(execute_command, specs, tally, parallel=2)
    out = capsys.readouterr().out
    assert tally.counts == {"finished": 1, "skipped": 0, "busy": 0, "failed": 1}
    assert tally.summary("test") == 1
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  failed")]
    assert line == [f"  failed bad: no data; pass --data (log {tmp_path / 'bad.log'})"]
    assert "FAILED" in out and "fine" in (tmp_path / "ok.log").read_text()
    assert (tmp_path / "ok.log").read_text().startswith("==== test ok ")


def test_a_job_whose_lock_is_held_is_busy_and_not_run(tmp_path):
    spec = dict(_spec(tmp_path, "held", "print('ran')"), lock_wait_s=0)
    fd = lock(tmp_path / "held.lock", 0)
    try:
        res = execute_command(spec)
    finally:
        os.close(fd)
    assert res["status"] == "busy" and not (tmp_path / "held.log").exists()
    assert execute_command(spec)["status"] == "finished"


def _env(tag, tmp_path) -> dict:
    if tag == "sbatch":  # an sbatch on PATH, so the time limit is checked next
        d = tmp_path / "bin"
        d.mkdir()
        (d / "sbatch").write_text("#!/bin/sh\nexit 1\n")
        (d / "sbatch").chmod(0o755)
        return {"PATH": f"{d}{os.pathsep}{os.environ['PATH']}"}
    if tag == "no-submitit":  # a submitit that fails to import, ahead of the real one
        d = tmp_path / "site" / "submitit"
        d.mkdir(parents=True)
        (d / "__init__.py").write_text("raise ImportError('no submitit here')\n")
        return {"PYTHONPATH": os.pathsep.join([str(d.parent), os.environ.get("PYTHONPATH", "")])}
    return tag if isinstance(tag, dict) else {}


CASES = [
    (["--launcher", "local"], {}, "add --num-shards N (2 or more)"),
    (["--launcher", "local", "--num-shards", "2", "--shard-index", "0"], {}, "drop --shard-index"),
    (["--launcher", "pbs", "--num-shards", "2"], {}, "--launcher 'pbs': pass local or slurm"),
    (["--num-shards", "2", "--parallel", "2"], {}, "add --launcher local"),
    (["--num-shards", "2", "--slurm", "time=5"], {}, "add --launcher slurm"),
    (["--launcher", "slurm", "--num-shards", "2", "--parallel", "2"], {},
     "--slurm array_parallelism=K"),
    (["--launcher", "slurm", "--num-shards", "2", "--slurm", "tme=5"],
     {"HIVA_SUBMITIT_CLUSTER": "local"}, "unknown key(s) in slurm: tme"),
    (["--launcher", "slurm", "--num-shards", "2"], "no-sbatch", "sbatch is not found"),
    (["--launcher", "slurm", "--num-shards", "2"], "sbatch", "needs slurm.time"),
    (["--launcher", "slurm", "--num-shards", "2", "--slurm", "time=5"], "no-submitit",
     "needs submitit; pip install submitit"),
]


@pytest.mark.parametrize("command", ["generate-descriptions", "embed"])
@pytest.mark.parametrize("argv, tag, expect", CASES,
                         ids=["no-shards", "shard-index", "launcher", "parallel", "slurm-alone",
                              "parallel-slurm", "slurm-key", "no-sbatch", "no-time",
                              "no-submitit"])
def test_launch_flags_that_do_not_fit_are_one_line(tmp_path, command, argv, tag, expect):
    if tag == "no-sbatch" and shutil.which("sbatch"):
        pytest.skip("this machine has sbatch")
    extra = ["--corpus", str(tmp_path / "corpus")] if command == "embed" else []
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "HIVA_SUBMITIT_CLUSTER"}
    p = subprocess.run([sys.executable, "-m", "hiva.cli", command, "--out", str(out), *extra,
                        *argv], capture_output=True, text=True, timeout=120,
                       env={**env, "HF_HUB_OFFLINE": "1", **_env(tag, tmp_path)})
    err = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(err) == 1 and expect in err[0], p.stderr
    assert err[0].startswith("hiva: error: ") and not out.exists()
