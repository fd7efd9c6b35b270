"""Resume after a real SIGKILL continues with the same losses; DDP on 2 gloo CPU processes gives
the test metrics a one-process evaluation gives."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest


def _losses(run):
    with open(run / "fold1" / "steps.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_resume_after_sigkill_gives_the_same_losses(tiny_manifest, tmp_path, cli, tiny_cfg):
    cfg = tiny_cfg(tmp_path / "c.yaml", epochs=3, tensorboard=False)
    ref = tmp_path / "ref"
    cli("train", "--config", cfg, "--data", tiny_manifest, "--out", ref)

    # Kill -9 as soon as the first checkpoint lands. A run that ends before the kill proves
    # nothing, so try again (a loaded machine can be that slow to notice); never skip.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for attempt in range(5):
        run = tmp_path / f"killed{attempt}"
        p = subprocess.Popen([sys.executable, "-m", "hiva.cli", "train", "--config", str(cfg),
                              "--data", str(tiny_manifest), "--out", str(run)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ck = run / "fold1" / "last.safetensors"
        deadline = time.time() + 600
        while not ck.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not (run / "fold1" / "metrics.json").exists():
            break
    else:
        pytest.fail("every run finished before it could be killed")
    before = _losses(run)
    assert len(before) < 6
    cli("train", "--config", cfg, "--data", tiny_manifest, "--out", run, "--resume", "latest")
    got, want = _losses(run), _losses(ref)
    assert [s for s, _ in got] == [1, 2, 3, 4, 5, 6]  # nothing doubled or lost
    with open(run / "fold1" / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-5, abs=1e-6)
    a = json.loads((run / "metrics.json").read_text())["mean"]["f1"]
    b = json.loads((ref / "metrics.json").read_text())["mean"]["f1"]
    assert a == pytest.approx(b)


def test_ddp_two_gloo_processes_match_one_process_metrics(tiny_manifest, tmp_path, cli,
                                                          tiny_cfg):
    cfg = tiny_cfg(tmp_path / "c.yaml", batch_size=2, eval_batch_size=3, tensorboard=False)
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "hiva.cli", "train", "--config", str(cfg), "--data", str(tiny_manifest), "--out",
         str(run), "--device", "cpu"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["world_size"] == 2
    assert [s for s, _ in _losses(run)] == [1, 2]  # rank 0 logs once per step
    ddp = summary["folds"]["1"]["test"]
    # The same weights scored by one process, in other batches: the same frames, the same F1.
    cli("evaluate", "--checkpoint", run, "--fold", "1", "--device", "cpu", "--batch-size", "5")
    one = json.loads((run / "fold1" / "evaluate.json").read_text())["test"]
    assert one["n"] == ddp["n"] == summary["folds"]["1"]["frames"]["test"]
    assert one["support"] == ddp["support"]
    assert one["f1"] == pytest.approx(ddp["f1"])
    assert one["auc"] == pytest.approx(ddp["auc"], abs=1e-6, nan_ok=True)
