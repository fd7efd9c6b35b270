"""`hiva train` → `hiva evaluate` → `hiva report` through the real CLI on tiny data, and the
refusals a user meets."""

import csv
import json

import pytest


@pytest.fixture(scope="module")
def trained(tiny_manifest, tmp_path_factory, cli, tiny_cfg):
    tmp = tmp_path_factory.mktemp("cli")
    cfg = tiny_cfg(tmp / "tiny.yaml")
    run = tmp / "run"
    r = cli("train", "--config", cfg, "--data", tiny_manifest, "--out", run)
    return run, cfg, r


def test_two_steps_write_every_output(trained):
    run, _, r = trained
    fold = run / "fold1"
    for name in ("last.safetensors", "last.state.pt", "best.safetensors", "history.csv",
                 "steps.csv", "metrics.json", "curves.png", "per_au_f1.png"):
        assert (fold / name).is_file(), name
    assert list((fold / "tb").iterdir()), "TensorBoard events"
    with open(fold / "steps.csv") as f:
        steps = list(csv.DictReader(f))
    assert [int(s["step"]) for s in steps] == [1, 2]
    assert all(float(s["loss"]) > 0 for s in steps)
    summary = json.loads((run / "metrics.json").read_text())
    test = summary["folds"]["1"]["test"]
    assert test["aus"] == [1, 2, 4, 6, 12, 25]
    assert len(test["f1"]) == 6 and 0 <= test["mean_f1"] <= 1
    assert summary["folds"]["1"]["subjects"]["test"] == 2  # 6 subjects, 3 folds
    assert "all-pos" in r.stdout and "AU25" in r.stdout


def test_evaluate_recomputes_the_test_metrics(trained, cli):
    run, _, _ = trained
    cli("evaluate", "--checkpoint", run, "--fold", "1", "--device", "cpu")
    ev = json.loads((run / "fold1" / "evaluate.json").read_text())["test"]
    tr = json.loads((run / "fold1" / "metrics.json").read_text())["test"]
    assert ev["f1"] == pytest.approx(tr["f1"]) and ev["n"] == tr["n"]
    assert ev["auc"] == pytest.approx(tr["auc"], nan_ok=True)


def test_report_puts_runs_side_by_side(trained, tmp_path, cli):
    run, _, _ = trained
    md = tmp_path / "t.md"
    r = cli("report", run, run, "--name", "a", "--name", "b", "--markdown", md)
    assert "AU12" in r.stdout and "all-pos" in r.stdout
    assert md.read_text().startswith("| AU | a | b | all-pos |")


def test_rerun_without_resume_is_refused(trained, tiny_manifest, cli):
    run, cfg, _ = trained
    r = cli("train", "--config", cfg, "--data", tiny_manifest, "--out", run, check=False)
    assert r.returncode == 1 and "--resume latest" in r.stderr and "Traceback" not in r.stderr


def test_checkpoint_of_another_au_list_is_refused(trained, tiny_manifest, tmp_path, cli,
                                                  tiny_cfg):
    import shutil

    run, _, _ = trained
    other = tmp_path / "other"
    shutil.copytree(run, other)
    (other / "fold1" / "metrics.json").unlink()  # unfinished fold → resume loads last.*
    cfg = tiny_cfg(tmp_path / "two.yaml", aus="1,2")
    # config.yaml of the run says 1,2 too, so only the checkpoint itself disagrees.
    from hiva.config import load_config, write_config
    from hiva.train.config import TrainConfig

    write_config(load_config(TrainConfig, cfg, data=str(tiny_manifest), out=str(other),
                             resume="latest"), other / "config.yaml")
    r = cli("train", "--config", cfg, "--data", tiny_manifest, "--out", other,
             "--resume", "latest", check=False)
    assert r.returncode == 1, r.stderr
    assert "trained for AUs [1, 2, 4, 6, 12, 25]" in r.stderr and "[1, 2]" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_flags_are_one_line_errors(tiny_manifest, tmp_path, cli):
    r = cli("train", "--data", tiny_manifest, "--out", tmp_path / "x", "--backbone", "vgg",
             check=False)
    assert r.returncode == 1 and "unknown backbone" in r.stderr and "Traceback" not in r.stderr
    r = cli("train", "--data", tiny_manifest, "--out", tmp_path / "x", "--aus", "1,43",
             "--text-mode", "random", "--pretrained", "none", "--backbone", "resnet18",
             check=False)
    assert r.returncode == 1 and "AU 43" in r.stderr
    r = cli("evaluate", "--checkpoint", tmp_path / "x", "--weights", "final", check=False)
    assert r.returncode == 1 and r.stderr == ("hiva: error: bad evaluate config: --weights "
                                              "'final': use best or last; fix the config or "
                                              "flag\n"), r.stderr


def test_a_folder_with_the_users_own_config_yaml_is_refused_and_kept(tiny_manifest, tmp_path,
                                                                     tiny_cfg):
    from tests.helpers import invoke

    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "config.yaml").write_text("lr: 0.1\nmodel: mine\n")
    code, out = invoke("train", "--config", tiny_cfg(tmp_path / "tiny.yaml"), "--data",
                       tiny_manifest, "--out", proj)
    assert code == 1 and "config.yaml that `hiva train` did not write" in out, out
    assert (proj / "config.yaml").read_text() == "lr: 0.1\nmodel: mine\n"
    assert [p.name for p in proj.iterdir()] == ["config.yaml"]
