"""The protocol, pinned where a quiet bug would change published numbers: which subjects train,
validate and test; which weights are tested; where thresholds are tuned; the fold scheme a
manifest gets; device correctness (the meta-device audit); bad input in training."""

from __future__ import annotations

import csv
import types

import numpy as np
import pandas as pd
import pytest
import torch

from hiva.config import load_config
from hiva.data.manifest import read_manifest
from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.model.factory import build_model
from hiva.runtime import Dist
from hiva.textbank import load_text
from hiva.train import fold_eval, protocol, steps, trainer
from hiva.train.config import TrainConfig
from hiva.train.evaluate import evaluate
from hiva.train.logs import RunLogs
from tests.train.conftest import TINY_MODEL

AUS = (1, 2, 4, 6, 12, 25)


def _cfg(tiny_cfg, tmp_path, manifest, name="run", **kw) -> TrainConfig:
    kw = dict(dict(tensorboard=False, plots=False), **kw)
    return load_config(TrainConfig, tiny_cfg(tmp_path / f"{name}.yaml", **kw),
                       data=str(manifest), out=str(tmp_path / name))


def _losses(run) -> list[tuple[int, float]]:
    with open(run / "fold1" / "steps.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


# --------------------------------------------------------------------------- meta-device audit
def _meta_parts(tiny_manifest, **model):
    """The real step functions' inputs, as the trainer makes them: the model on ``meta``, the
    collated batch (with its AU regions) and the sampled text on the CPU (the steps must move
    them)."""
    from hiva.data.dataset import AUDataset, collate_skip
    from hiva.data.transforms import train_transform
    from hiva.model.losses import au_weights_from_rates, build_loss
    from hiva.model.text import sample_text

    cfg = TrainConfig(model=dict(backbone="resnet18", pretrained="none", input_size=32,
                                 d_model=32, num_heads=2, text_dim=8, text_mode="corpus",
                                 **model))
    mc = cfg.model_config(AUS)
    meta = torch.device("meta")
    model = build_model(mc, meta, channels_last=True)
    df = read_manifest(tiny_manifest)
    ds = AUDataset(df, AUS, train_transform(size=32, resize=36, normalise=False), seed=0)
    batch = collate_skip([ds[i] for i in range(4)])  # uint8, as the trainer's loader sends it
    bank = {a: torch.randn(5, 8) for a in AUS}
    text = sample_text(bank, AUS, 3, torch.Generator().manual_seed(0))
    loss_fn = build_loss(mc, au_weights_from_rates(np.full(len(AUS), 0.3)))
    return cfg, model, batch, text, loss_fn, meta


@pytest.mark.parametrize("model", [{}, {"map_prior": "both", "feature_stride": 16},
                                   {"arch": "megraphau", "graph_stage": 2}],
                         ids=["plain", "region-prior", "megraphau"])
def test_train_eval_and_predict_steps_keep_every_tensor_on_the_model_device(tiny_manifest,
                                                                            model):
    from hiva.predict.detector import Detector

    cfg, model, batch, text, loss_fn, meta = _meta_parts(tiny_manifest, **model)
    assert batch["image"].device.type == "cpu" and text[1].device.type == "cpu"
    assert batch["image"].dtype == torch.uint8  # scaled and normalised on the model's device
    assert batch["regions"].device.type == "cpu"
    opt = torch.optim.AdamW(steps.param_groups(model, cfg), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, steps.lr_lambda(10, 1, 0.01))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    parts = steps.train_micro_step(model.train(), batch, text, loss_fn, scaler, meta, None,
                                     channels_last=True, grad_accum=2)
    assert parts["total"].device == meta
    assert ("align" in parts) == (cfg.model.arch == "hiva") and ("edge" in parts) == (
        cfg.model.arch == "megraphau")
    assert ("map_kl" in parts) == (cfg.model.map_prior == "both")
    assert all(p.grad is not None and p.grad.device == meta
               for p in model.parameters() if p.requires_grad)
    steps.optimizer_step(model, opt, sched, scaler, grad_clip=1.0)
    out, loss = steps.eval_step(model, batch, text, meta, None, channels_last=True,
                                  loss_fn=loss_fn)
    assert out.probs.device == meta and loss.device == meta
    # Prediction: the Detector's forward, with its text as the loader holds it.
    det = Detector.__new__(Detector)
    det.loaded = types.SimpleNamespace(model=model.eval(), device=meta, amp=None, text_input=text)
    assert det.forward(batch["image"].float()).activation_maps.device == meta


def test_the_audit_catches_a_tensor_left_on_the_cpu(tiny_manifest, monkeypatch):
    cfg, model, batch, text, loss_fn, meta = _meta_parts(tiny_manifest)
    real = steps.batch_to

    def forgets_the_mask(batch, device, channels_last):
        x, y, _ = real(batch, device, channels_last)
        return x, y, batch["mask"]  # planted: the known-label mask stays on the CPU

    monkeypatch.setattr(steps, "batch_to", forgets_the_mask)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with pytest.raises(RuntimeError, match="device"):
        steps.train_micro_step(model.train(), batch, text, loss_fn, scaler, meta, None,
                                 channels_last=False)


def _meta_fold(tiny_cfg, tmp_path, manifest) -> trainer.FoldRun:
    """A real fold of the tiny set (KL and bias priors, 2 micro-batches a step, 3 steps), moved
    onto the meta device after its setup: its model, loss weights, optimizer and schedule."""
    cfg = _cfg(tiny_cfg, tmp_path, manifest, batch_size=2, grad_accum=2, max_steps_per_epoch=3,
               model=dict(TINY_MODEL, map_prior="both", feature_stride=16))
    df, scheme = protocol.load_data(cfg.data)
    aus = protocol.resolve_aus(cfg, df)
    k, pool, test = protocol.make_folds(cfg, df, scheme)[1][0]
    fr = trainer.FoldRun(cfg, k, pool, test, aus, load_text(cfg.model, aus), Dist(),
                         torch.device("cpu"))
    fr.device = meta = torch.device("meta")
    fr.net = fr.model.to(meta)
    fr.loss_fn.weights = fr.loss_fn.weights.to(meta)
    fr.opt = torch.optim.AdamW(steps.param_groups(fr.model, cfg), lr=cfg.lr)
    fr.sched = torch.optim.lr_scheduler.LambdaLR(fr.opt, steps.lr_lambda(fr.total, 1, 0.01))
    fr.logs = RunLogs(fr.folder, True, False, 0, 0)
    return fr


def test_an_epochs_training_steps_never_wait_for_the_device(tiny_manifest, tiny_cfg, tmp_path,
                                                           monkeypatch):
    """The trainer's own loop on the meta device, where reading a value (``float``, ``.item``,
    ``bool``, ``.tolist``, ``.nonzero``) raises as a host sync would stall a GPU: every micro-
    and optimizer step runs, and the loss is first read by the tally's flush (at the epoch's end
    or every ``FLUSH_EVERY`` steps), all the steps' losses in one copy."""
    fr = _meta_fold(tiny_cfg, tmp_path, tiny_manifest)
    taken = []
    fr.opt.register_step_post_hook(lambda *a: taken.append(fr.step))
    tally, _ = fr.train_steps(0)  # FLUSH_EVERY (50) steps never come in 3
    assert fr.steps_per_epoch == 3 and taken == [0, 1, 2] and tally.seen == 6
    assert tally.sums.device.type == "meta"
    with pytest.raises(NotImplementedError, match="meta"):
        tally.flush()
    # A flush due within the epoch is a read too: the harness sees it, after its steps.
    monkeypatch.setattr(steps, "FLUSH_EVERY", 2)
    taken.clear()
    with pytest.raises(NotImplementedError, match="meta"):
        fr.train_steps(1)
    assert taken == [3, 4]


def test_the_steps_file_holds_a_row_per_step_across_flushes(tiny_manifest, tiny_cfg, tmp_path,
                                                            monkeypatch):
    """Rows flushed every 2 steps and at the epoch's end: one per optimizer step, in order, with
    the loss and learning rate of that step (the lr the schedule gave after it)."""
    monkeypatch.setattr(steps, "FLUSH_EVERY", 2)
    lrs, losses = [], []
    real = steps.LossTally.step

    def spy(self, step, epoch, lr, loss):
        lrs.append(lr)
        losses.append(float(loss))
        real(self, step, epoch, lr, loss)

    monkeypatch.setattr(steps.LossTally, "step", spy)
    trainer.run(_cfg(tiny_cfg, tmp_path, tiny_manifest, epochs=2, max_steps_per_epoch=3,
                     batch_size=2))
    with open(tmp_path / "run" / "fold1" / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "epoch", "loss", "lr"]
    assert [(int(r["step"]), int(r["epoch"])) for r in rows] == [
        (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(lrs, rel=1e-12)
    assert [float(r["loss"]) for r in rows] == [round(v, 6) for v in losses]
    with open(tmp_path / "run" / "fold1" / "history.csv") as f:
        hist = list(csv.DictReader(f))
    # the epoch's train_loss is the mean over its micro-batches (here one per step)
    assert [float(h["train_loss"]) for h in hist] == pytest.approx(
        [np.mean(losses[:3]), np.mean(losses[3:])], rel=1e-9)


# --------------------------------------------------------------------------- folds
def _frame(subjects, fold=None):
    df = pd.DataFrame({"path": [f"{s}.jpg" for s in subjects], "subject": subjects,
                       "sequence": "T1", "frame": 0, au_column(1): 1})
    if fold is not None:
        df["fold"] = fold
    return df


def test_auto_folds_follow_the_manifest_then_the_dataset_then_kfold():
    from hiva.data.folds import BP4D_PARTS, DISFA_PARTS

    cfg = TrainConfig()
    subjects = ["a", "b", "c", "d", "e", "f"]
    scheme, folds = protocol.make_folds(cfg, _frame(subjects, [3, 3, 1, 1, 2, 2]), "auto")
    assert scheme == "manifest"
    assert [sorted(t["subject"]) for _, _, t in folds] == [["c", "d"], ["e", "f"], ["a", "b"]]
    bp4d = [s for part in BP4D_PARTS.values() for s in part]
    scheme, folds = protocol.make_folds(cfg, _frame(bp4d), "auto")
    assert scheme == "bp4d"  # fold 1 tests part 3 (ME-GraphAU's numbering)
    assert sorted(folds[0][2]["subject"]) == sorted(BP4D_PARTS[3])
    disfa = [s for part in DISFA_PARTS.values() for s in part]
    scheme, folds = protocol.make_folds(cfg, _frame(disfa), "auto")
    assert scheme == "disfa" and sorted(folds[2][2]["subject"]) == sorted(DISFA_PARTS[1])
    assert protocol.make_folds(cfg, _frame(subjects), "auto")[0] == "kfold"
    with pytest.raises(HivaError, match="several folds"):
        protocol.make_folds(cfg, _frame(["a", "a", "b"], [1, 2, 3]), "auto")
    with pytest.raises(HivaError, match="--num-folds 4"):
        protocol.make_folds(cfg, _frame(["a", "b", "c", "d"], [1, 2, 3, 4]), "auto")


# --------------------------------------------------------------------------- one fold, pinned
@pytest.fixture(scope="module")
def pinned(tiny_manifest, tmp_path_factory, tiny_cfg):
    """Three epochs where validation picks epoch 1 (scores 3, 1, 2), thresholds recorded."""
    tmp = tmp_path_factory.mktemp("pinned")
    mp = pytest.MonkeyPatch()
    scores = iter([3.0, 1.0, 2.0])
    real_validate, real_tune = trainer.validate, fold_eval.tune_thresholds
    tuned = []

    def validate(*a, **kw):
        row, _ = real_validate(*a, **kw)
        return row, next(scores)

    def tune(p, y, m):
        tuned.append((p, y, m))
        return real_tune(p, y, m)

    mp.setattr(trainer, "validate", validate)
    mp.setattr(fold_eval, "tune_thresholds", tune)
    try:
        cfg = _cfg(tiny_cfg, tmp, tiny_manifest, epochs=3, lr=0.01)
        summary = trainer.run(cfg)
    finally:
        mp.undo()
    return summary, tmp / "run", tuned


def test_train_val_and_test_subjects_are_disjoint_and_complete(pinned, tiny_manifest):
    from hiva.data.folds import assign_folds

    summary, _, _ = pinned
    df = read_manifest(tiny_manifest)
    ids = summary["folds"]["1"]["subject_ids"]
    train, val, test = (set(ids[k]) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(df["subject"])
    assert summary["fold_scheme"] == "kfold"
    assert test == set(df["subject"][assign_folds(df, "kfold", 3, 0) == 1])


def test_thresholds_are_tuned_on_validation_frames_only(pinned, tiny_manifest):
    summary, _, tuned = pinned
    fold = summary["folds"]["1"]
    df = read_manifest(tiny_manifest)
    val = df[df["subject"].isin(fold["subject_ids"]["val"])]
    assert len(tuned) == 1
    _, y, m = tuned[0]
    assert len(y) == len(val) == fold["frames"]["val"] != fold["frames"]["test"]
    labels = val[[au_column(a) for a in AUS]]
    np.testing.assert_array_equal(m, labels.notna().to_numpy())
    np.testing.assert_array_equal(y, labels.fillna(0).to_numpy(dtype=np.float32))
    assert fold["test_tuned"]["thresholds"] == pytest.approx(
        list(fold_eval.tune_thresholds(*tuned[0])))


def test_the_test_score_uses_the_weights_picked_on_validation(pinned):
    summary, run, _ = pinned
    fold = summary["folds"]["1"]
    assert fold["best_epoch"] == 1 and fold["epochs"] == 3
    got = pd.read_parquet(run / "fold1" / "test_predictions.parquet")
    cols = [c for c in got.columns if c.startswith("p_")]
    assert len(got) == fold["frames"]["test"] and len(cols) == len(AUS)
    best = evaluate(run, 1, device="cpu", weights="best")
    evaluate(run, 1, device="cpu", weights="last")
    pb = pd.read_parquet(run / "fold1" / "evaluate_best_predictions.parquet")
    pl = pd.read_parquet(run / "fold1" / "evaluate_last_predictions.parquet")
    np.testing.assert_allclose(got[cols], pb[cols], rtol=0, atol=1e-6)
    assert np.abs(got[cols].to_numpy() - pl[cols].to_numpy()).max() > 1e-4
    assert fold["test"]["f1"] == pytest.approx(best["test"]["f1"], nan_ok=True)


# --------------------------------------------------------------------------- runs
def test_the_worker_count_changes_nothing_but_speed(tiny_manifest, tmp_path, tiny_cfg):
    losses = {}
    for w in (0, 2):
        cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, name=f"w{w}", epochs=2, num_workers=w,
                   tune_thresholds=False)
        trainer.run(cfg)
        losses[w] = _losses(tmp_path / f"w{w}")
    assert len(losses[0]) == 4 and losses[0] == losses[2]


def test_resume_may_train_longer(tiny_manifest, tmp_path, tiny_cfg, capsys):
    trainer.run(_cfg(tiny_cfg, tmp_path, tiny_manifest, epochs=1, tune_thresholds=False))
    longer = _cfg(tiny_cfg, tmp_path, tiny_manifest, epochs=2, tune_thresholds=False,
                  resume="latest")
    summary = trainer.run(longer)
    assert "schedule extended from 1 to 2 epochs" in capsys.readouterr().out
    assert [s for s, _ in _losses(tmp_path / "run")] == [1, 2, 3, 4]
    assert summary["folds"]["1"]["epochs"] == 2
    shorter = _cfg(tiny_cfg, tmp_path, tiny_manifest, epochs=1, tune_thresholds=False,
                   resume="latest")
    with pytest.raises(HivaError, match="longer, not shorter: pass --epochs 2"):
        trainer.run(shorter)


def test_bad_training_input_is_one_line(tiny_manifest, tmp_path, tiny_cfg, cli):
    cfg = tiny_cfg(tmp_path / "c.yaml")
    moved = tmp_path / "moved" / "manifest.parquet"
    moved.parent.mkdir()
    moved.write_bytes(tiny_manifest.read_bytes())  # a manifest moved away from its images
    r = cli("train", "--config", cfg, "--data", moved, "--out", tmp_path / "run", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "none of the 36 images" in r.stderr and not (tmp_path / "run").exists()
    taken = tmp_path / "file"
    taken.write_text("x")
    r = cli("train", "--config", cfg, "--data", tiny_manifest, "--out", taken, check=False)
    assert r.returncode == 1 and "is a file" in r.stderr and "Traceback" not in r.stderr
    assert taken.read_text() == "x"
