"""`hiva sweep`: the plan and sweep.json, shards, a killed sweep resuming, a run another sweep
trains (busy), a failing arm, bad sweep files, a changed plan, and the Slurm path through
submitit's local executor. Tiny runs only."""

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from hiva.errors import HivaError
from hiva.train import executor
from hiva.train.executor import is_busy, train_command
from hiva.train.launch import check_root, write_plan
from hiva.train.sweep import check_shards, load_sweep, shard_runs

CONTRACT = {"id", "arm", "seed", "label_fraction", "dir"}


def make_sweep(tmp, tiny_cfg, data="x.parquet", **doc):
    """A sweep file in ``tmp`` on a tiny base config (no TensorBoard/plots: faster)."""
    tiny_cfg(tmp / "base.yaml", tensorboard=False, plots=False)
    d = {"base": "base.yaml", "set": {"data": str(data)}, "arms": {"a": None}, "seeds": [0]}
    d.update(doc)
    p = tmp / "sweep.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def test_plan_is_arms_by_fractions_by_seeds(tmp_path, tiny_cfg, cli):
    (tmp_path / "arms").mkdir()
    (tmp_path / "arms" / "ng.yaml").write_text("model:\n  graph: false\n")
    p = make_sweep(tmp_path, tiny_cfg, arms={"ng": "arms/ng.yaml", "lin": {"model": {"head":
                   "linear"}, "label_fractions": [0.05]}}, seeds=[0, 2],
                   label_fractions=[1.0, 0.1], folds=[2])
    sw = load_sweep(p, tmp_path / "root")
    assert [r.id for r in sw.runs] == [
        "ng/seed0", "ng/seed2", "ng/seed0/labels10", "ng/seed2/labels10",
        "lin/seed0/labels5", "lin/seed2/labels5"]
    r = sw.runs[3]
    assert (r.arm, r.seed, r.label_fraction, r.dir) == ("ng", 2, 0.1, "ng/seed2/labels10")
    c = r.config
    assert c.out == str(tmp_path / "root" / "ng" / "seed2" / "labels10")
    assert (c.resume, c.seed, c.label_fraction, c.folds) == ("latest", 2, 0.1, (2,))
    assert c.model.graph is False and c.model.d_model == 32  # the overlay merged into the base
    assert sw.runs[4].config.model.head == "linear" and sw.runs[4].config.model.graph is True

    r = cli("sweep", p, "--out", tmp_path / "root", "--dry-run", "--num-shards", "2")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ng/seed0", "new", "shard", "0"]
    assert lines[1].split()[:4] == ["ng/seed2", "new", "shard", "1"]
    assert "6 runs in the plan, 3 in shard 0 of 2" in lines[-1]
    assert not (tmp_path / "root").exists()  # a dry run writes nothing

    write_plan(sw)
    plan = json.loads((tmp_path / "root" / "sweep.json").read_text())
    assert plan["version"] == 1
    assert [{k: x[k] for k in CONTRACT} for x in plan["runs"]] == [
        {"id": r.id, "arm": r.arm, "seed": r.seed, "label_fraction": r.label_fraction,
         "dir": r.dir} for r in sw.runs]
    assert isinstance(plan["runs"][0]["label_fraction"], float)


def test_shards_partition_the_plan(tmp_path, tiny_cfg):
    p = make_sweep(tmp_path, tiny_cfg, arms={"a": None, "b": {"lr": 0.01}}, seeds=[0, 1, 2],
                   label_fractions=[1.0, 0.5])
    runs = load_sweep(p, tmp_path / "root").runs
    assert len(runs) == 12
    for n in (1, 2, 3, 5, 12, 20):
        shards = [shard_runs(runs, n, i) for i in range(n)]
        ids = [r.id for s in shards for r in s]
        assert sorted(ids) == sorted(r.id for r in runs) and len(set(ids)) == len(runs)
        assert all(r.index % n == i for i, s in enumerate(shards) for r in s)
    with pytest.raises(HivaError, match="--shard-index 3"):
        check_shards(3, 3)
    with pytest.raises(HivaError, match="--num-shards 0"):
        check_shards(0, 0)


def test_multi_gpu_runs_go_through_torchrun():
    one, two = train_command("c.yaml"), train_command("c.yaml", 2)
    assert one[1:] == ["-m", "hiva.cli", "train", "--config", "c.yaml"]
    assert two[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    assert two[6:] == one[1:]


def test_a_killed_sweep_resumes_without_rerunning(tmp_path, tiny_cfg, tiny_manifest, cli):
    p = make_sweep(tmp_path, tiny_cfg, data=tiny_manifest, seeds=[0, 1])
    root = tmp_path / "root"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "hiva.cli", "sweep", str(p), "--out",
                             str(root)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = root / "a" / "seed0"
    deadline = time.monotonic() + 180
    while not (first / "metrics.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "first run never finished"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "a" / "seed1" / "metrics.json").exists()
    # the train subprocess dies with the sweep: nobody holds the second run's lock
    end = time.monotonic() + 10
    while is_busy(root / "a" / "seed1") and time.monotonic() < end:
        time.sleep(0.1)
    assert not is_busy(root / "a" / "seed1")
    before = {f: f.stat().st_mtime_ns for f in (first / "metrics.json",
                                                 first / "fold1" / "history.csv")}

    r = cli("sweep", p, "--out", root)
    assert "finished 1, skipped 1 (already finished), failed 0" in r.stdout
    assert "busy" not in r.stdout
    assert {f: f.stat().st_mtime_ns for f in before} == before
    assert (first / "train.log").read_text().count("==== hiva sweep") == 1
    assert (root / "a" / "seed1" / "metrics.json").is_file()
    r = cli("sweep", p, "--out", root, "--dry-run")
    assert [ln.split()[1] for ln in r.stdout.splitlines()[:2]] == ["finished", "finished"]


# The second launcher: a process of its own whose train command would say that it ran.
SECOND = """import json, sys
from hiva.train import executor
executor.train_command = lambda config, nproc=1: [sys.executable, "-c", "print('second ran')"]
print(json.dumps(executor.execute_run(json.loads(sys.argv[1]))))
"""


def test_a_run_another_process_trains_is_busy_and_not_trained_again(tmp_path, monkeypatch):
    """Two sweeps on one folder: while the first trains a run (its train command, a stand-in,
    waits on a FIFO for the test's word), a second process finds the run's lock held and
    reports it busy without starting its own train command; once the first is done, the run
    counts as finished for the second."""
    d = tmp_path / "root" / "a" / "seed0"
    d.mkdir(parents=True)
    started, release = tmp_path / "started", tmp_path / "release"
    os.mkfifo(started)
    os.mkfifo(release)
    # read-write ends: opening never blocks, a read waits for data, never sees an early EOF
    s_fd, r_fd = os.open(started, os.O_RDWR), os.open(release, os.O_RDWR)
    first = (f"import pathlib; open({str(started)!r}, 'wb').write(b'1'); "
             f"open({str(release)!r}, 'rb').read(1); "
             f"pathlib.Path({str(d)!r}, 'metrics.json').write_text('{{}}')")
    monkeypatch.setattr(executor, "train_command",
                        lambda config, nproc=1: [sys.executable, "-c", first])
    spec = {"id": "a/seed0", "dir": str(d), "config": str(d / "sweep_run.yaml"),
            "cwd": str(tmp_path), "lock_wait_s": 0}
    got = {}
    t = threading.Thread(target=lambda: got.update(executor.execute_run(spec)))
    t.start()

    def second() -> dict:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        r = subprocess.run([sys.executable, "-c", SECOND, json.dumps(spec)], env=env,
                           capture_output=True, text=True, timeout=120, check=True)
        return json.loads(r.stdout)

    try:
        assert select.select([s_fd], [], [], 120)[0], "the first run's command never started"
        res = second()
        assert res["status"] == "busy" and "another process runs it" in res["reason"], res
        assert is_busy(d)  # what a dry run shows
    finally:
        os.write(r_fd, b"1")
        t.join(120)
        os.close(s_fd)
        os.close(r_fd)
    assert got["status"] == "finished", got
    log = (d / "train.log").read_text()
    assert log.count("==== hiva sweep") == 1 and "second ran" not in log
    assert second()["status"] == "skipped" and not is_busy(d)


def test_a_failing_arm_is_reported_and_the_others_finish(tmp_path, tiny_cfg, tiny_manifest,
                                                         cli):
    p = make_sweep(tmp_path, tiny_cfg, data=tiny_manifest,
                   arms={"broken": {"data": str(tmp_path / "missing.parquet")}, "ok": None})
    root = tmp_path / "root"
    r = cli("sweep", p, "--out", root, "--set", "max_steps_per_epoch=1", "--set",
            "model.dropout=0.2", check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    log = root / "broken" / "seed0" / "train.log"
    fail = [ln for ln in r.stdout.splitlines() if ln.startswith("[1/2] broken/seed0: FAILED")]
    assert fail and "missing.parquet does not exist" in fail[0] and str(log) in fail[0]
    assert "finished 1, skipped 0 (already finished), failed 1" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert (root / "ok" / "seed0" / "metrics.json").is_file()
    for rid in ("broken/seed0", "ok/seed0"):  # --set reaches every run
        cfg = yaml.safe_load((root / rid / "sweep_run.yaml").read_text())
        assert cfg["max_steps_per_epoch"] == 1 and cfg["model"]["dropout"] == 0.2
        assert cfg["resume"] == "latest" and cfg["out"] == str(root / rid)
    trained = yaml.safe_load((root / "ok" / "seed0" / "config.yaml").read_text())
    assert trained["max_steps_per_epoch"] == 1
    plan = json.loads((root / "sweep.json").read_text())
    assert [x["id"] for x in plan["runs"]] == ["broken/seed0", "ok/seed0"]
    r = cli("sweep", p, "--out", root, "--dry-run", check=False)  # without the --set: refused
    assert r.returncode == 1
    assert "(e.g. broken/seed0: max_steps_per_epoch, model.dropout)" in r.stderr


@pytest.mark.parametrize("doc, match", [
    ({"sedes": [0]}, "unknown key.*sedes"),
    ({"base": "nope.yaml"}, "nope.yaml does not exist"),
    ({"arms": {"bad/name": None}}, "arm name 'bad/name' is not a safe folder name"),
    ({"arms": {}}, "at least one arm"),
    ({"arms": {"a": {"lr": 0}}}, "arm a .*lr must be > 0"),
    ({"arms": {"a": {"learning_rate": 0.1}}}, "learning_rate"),
    ({"arms": {"a": {"model": {"grph": False}}}}, "arm a .*grph"),
    ({"arms": {"a": {"seed": 3}}}, "sets seed.*seeds"),
    ({"arms": {"a": "missing_arm.yaml"}}, "missing_arm.yaml does not exist"),
    ({"label_fractions": [1.0, 0]}, "label_fractions value 0 is not in"),
    ({"seeds": []}, "seeds is empty"),
], ids=["unknown-key", "missing-base", "arm-name", "no-arms", "bad-value", "arm-key",
        "model-key", "plan-key", "missing-arm-file", "fraction", "no-seeds"])
def test_bad_sweep_files_fail_in_one_line_before_any_work(tmp_path, tiny_cfg, cli, doc, match):
    import re

    p = make_sweep(tmp_path, tiny_cfg, **doc)
    r = cli("sweep", p, "--out", tmp_path / "root", check=False)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hiva: error: "), r.stderr
    assert re.search(match, lines[0]), lines[0]
    assert not (tmp_path / "root").exists()


def test_another_plan_in_the_same_root_is_refused(tmp_path, tiny_cfg, cli):
    p = make_sweep(tmp_path, tiny_cfg, seeds=[0, 1])
    root = tmp_path / "root"
    write_plan(load_sweep(p, root))
    first = (root / "sweep.json").read_bytes()
    write_plan(load_sweep(p, root))  # the same plan (e.g. another shard): accepted, unchanged
    assert (root / "sweep.json").read_bytes() == first
    with pytest.raises(HivaError, match=r"another sweep plan \(new runs: a/seed2\).*another --out"):
        check_root(load_sweep(make_sweep(tmp_path, tiny_cfg, seeds=[0, 1, 2]), root))
    r = cli("sweep", p, "--out", root, "--dry-run", "--set", "lr=0.5", check=False)
    assert r.returncode == 1 and "other settings: a/seed0, a/seed1" in r.stderr


def test_slurm_launcher_through_submitit_local_executor(tmp_path, tiny_cfg, tiny_manifest, cli):
    pytest.importorskip("submitit")
    p = make_sweep(tmp_path, tiny_cfg, data=tiny_manifest, seeds=[0, 1],
                   slurm={"time": 5, "cpus_per_task": 1, "partition": "ignored-locally"})
    root = tmp_path / "root"
    r = cli("sweep", p, "--out", root, "--launcher", "slurm",
            env={"HIVA_SUBMITIT_CLUSTER": "local"})
    assert "submitted 2 run(s) as job array" in r.stdout
    assert "finished 2, skipped 0 (already finished), failed 0" in r.stdout
    for rid in ("a/seed0", "a/seed1"):
        assert (root / rid / "metrics.json").is_file()
        assert "==== hiva sweep" in (root / rid / "train.log").read_text()
    assert any((root / ".submitit").iterdir())


def test_the_shipped_ablation_sweep_validates(tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "ablations.yaml"
    sw = load_sweep(path, tmp_path / "root")
    ids = [r.id for r in sw.runs]
    assert len(ids) == 8 * 3 and ids[:4] == ["full/seed0", "full/seed1", "full/seed2",
                                             "full/seed0/labels10"]
    assert not [i for i in ids if "labels" in i and not i.startswith("full/")]
    by_id = {r.id: r.config for r in sw.runs}
    assert by_id["no_graph/seed1"].model.graph is False
    assert by_id["random_text/seed0"].model.text_mode == "random"
    assert by_id["full/seed2/labels10"].label_fraction == 0.1
    c = by_id["full/seed0"]
    assert (c.data, c.text_bank, c.aus, c.model.input_size, c.epochs) == (
        "out/demo/synth/manifest.parquet", "out/demo/text-bank", "bp4d", 112, 10)


def test_the_shipped_language_sweep_validates(tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "language.yaml"
    sw = load_sweep(path, tmp_path / "root")
    by_id = {r.id: r.config for r in sw.runs}
    assert len(by_id) == 5 * 2 * 3 + 3 * 3
    modes = {r.config.model.text_mode for r in sw.runs}
    assert modes == {"corpus", "names", "learned", "shuffled", "random"}
    assert all(c.model.head == "match" and c.epochs == 8 and c.schedule == "steps"
               for c in by_id.values())
    assert by_id["corpus/seed1/labels5"].label_fraction == 0.05
    assert by_id["shuffled_unseen_au2/seed2"].zero_shot_aus == (2,)
    assert by_id["shuffled_unseen_au2/seed2"].model.text_mode == "shuffled"
    assert by_id["corpus/seed0"].zero_shot_aus == ()
    assert by_id["corpus/seed0"].model.text_center is False
    centred = load_sweep(path.parent / "language_centred.yaml", tmp_path / "c").runs
    assert [r.config.model.text_center for r in centred] == [True] * 9
    assert {r.config.model.text_mode for r in centred} == {"corpus", "shuffled"}


def test_the_benchmark_sweeps_validate(tmp_path):
    """The confirmatory benchmark (issue 28): heads-only on the independent set, 8 seeds, the
    primary contrast declared in the file; the fine-tuned check trains the backbone."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    main = load_sweep(folder / "bench_main.yaml", tmp_path / "m")
    by_id = {r.id: r.config for r in main.runs}
    assert len(by_id) == 10 * 8 and main.primary == "corpus - shuffled"
    c = by_id["corpus/seed7"]
    assert (c.data, c.model.freeze_backbone, c.model.feature_stride, c.num_folds) == (
        "out/bench/confirm/manifest.parquet", True, 16, 1)
    assert by_id["bias/seed0"].model.map_prior == "bias"
    assert by_id["no_ddca/seed3"].model.ddca is False
    assert by_id["shuffled/seed0"].model.text_mode == "shuffled"
    unseen = load_sweep(folder / "bench_unseen.yaml", tmp_path / "u")
    assert len(unseen.runs) == 3 * 8
    assert all(r.config.zero_shot_aus == (2,) for r in unseen.runs)
    fine = load_sweep(folder / "bench_finetune.yaml", tmp_path / "f")
    assert len(fine.runs) == 2 * 3
    assert all(not r.config.model.freeze_backbone and r.config.backbone_lr_mult == 0.3
               for r in fine.runs)
