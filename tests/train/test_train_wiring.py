"""Properties that hold only when the trainer's parts are wired together, each checked through a
real ``FoldRun`` on the tiny synthetic set: ``schedule: steps`` takes the full set's optimizer
steps and ends its schedule; a zero-shot run's epoch choice reads no withheld label; descriptions
are drawn afresh every step (and the random control gives each AU its own); the KL prior of each
AU is its own region; ``select_metric: loss`` keeps the epoch of the lowest validation loss."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hiva.config import load_config
from hiva.data.dataset import AUDataset
from hiva.model import losses
from hiva.regions import disc_fractions
from hiva.runs import HISTORY, STEPS, weights_file
from hiva.runtime import Dist
from hiva.textbank import load_text
from hiva.train import fold_eval, protocol, trainer
from hiva.train.config import TrainConfig
from tests.train.conftest import TINY_MODEL

CPU = torch.device("cpu")


def _cfg(tiny_cfg, tmp_path, manifest, name="run", **kw) -> TrainConfig:
    kw = dict(dict(tensorboard=False, plots=False, tune_thresholds=False), **kw)
    return load_config(TrainConfig, tiny_cfg(tmp_path / f"{name}.yaml", **kw),
                       data=str(manifest), out=str(tmp_path / name))


def _fold(cfg: TrainConfig, edit=None) -> trainer.FoldRun:
    """Fold 1's ``FoldRun`` (``edit``: a function given the training pool, returning the pool
    to train on)."""
    df, scheme = protocol.load_data(cfg.data)
    aus = protocol.resolve_aus(cfg, df)
    _, made = protocol.make_folds(cfg, df, scheme)
    k, pool, test = made[0]
    return trainer.FoldRun(cfg, k, pool if edit is None else edit(pool), test, aus,
                           load_text(cfg.model, aus), Dist(), CPU)


def _rows(fr: trainer.FoldRun, name: str) -> list[dict]:
    with open(fr.folder / name, newline="") as f:
        return list(csv.DictReader(f))


def _run_counting_steps(fr: trainer.FoldRun) -> list[float]:
    """Run ``fr``; the learning rate of each optimizer step it really took, in order."""
    used = []
    fr.opt.register_step_post_hook(lambda opt, args, kw: used.append(opt.param_groups[0]["lr"]))
    fr.run()
    return used


@pytest.mark.parametrize("share", [dict(label_fraction=0.34), dict(label_subjects=2)])
def test_schedule_steps_takes_the_full_sets_optimizer_steps_and_ends_its_schedule(
        share, tiny_manifest, tiny_cfg, tmp_path):
    """Counted at the optimizer itself, not the planned ``steps_per_epoch``: a labelled share
    trained with ``schedule: steps`` takes the steps its whole training set gives, and the
    cosine ends at its floor (lr × min_lr_fraction) after the last one."""
    bs, epochs = 4, 2
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, schedule="steps", batch_size=bs,
               epochs=epochs, max_steps_per_epoch=None, **share)
    fr = _fold(cfg)
    _, pool, _ = protocol.make_folds(cfg, *protocol.load_data(cfg.data))[1][0]
    full = protocol.split_pool(cfg, pool)[2]  # the training set before the share was drawn
    want = len(full) // bs * epochs
    assert len(fr.ds_train) // bs * epochs < want  # the share alone would take fewer
    used = _run_counting_steps(fr)
    assert len(used) == want
    final = cfg.lr * cfg.min_lr_fraction
    assert fr.sched.get_last_lr() == pytest.approx([final] * len(fr.opt.param_groups))
    logged = [float(r["lr"]) for r in _rows(fr, STEPS)]  # the lr after each step
    assert len(logged) == want and logged[-1] == pytest.approx(final)
    assert all(a > b for a, b in zip(used, used[1:])) and used[-1] > final  # no warmup here


@pytest.mark.parametrize("bs", [4, 8])  # 8: the share is less than one batch (kept whole)
def test_an_epoch_shorter_than_grad_accum_takes_its_planned_step(bs, tiny_manifest, tiny_cfg,
                                                                 tmp_path):
    """A share of 6 frames holds one batch, fewer than ``grad_accum`` 2: each epoch still takes
    the one step planned for it (what it has accumulated), and the schedule ends."""
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, label_fraction=0.34, batch_size=bs,
               grad_accum=2, epochs=2, max_steps_per_epoch=None)
    fr = _fold(cfg)
    assert len(fr.ds_train) == 6 and fr.steps_per_epoch == 1
    used = _run_counting_steps(fr)
    assert len(used) == 2 and fr.step == 2
    assert fr.sched.get_last_lr()[0] == pytest.approx(cfg.lr * cfg.min_lr_fraction)


def test_zero_shot_epoch_choice_reads_no_withheld_validation_label(tiny_manifest, tiny_cfg,
                                                                   tmp_path):
    """The withheld AU's labels on the validation subjects are flipped in the data the run
    reads: every validation number behind the epoch choice (loss, mean F1, mean AUC) and the
    choice itself stay exactly those of the clean run."""
    kw = dict(zero_shot_aus="2", epochs=3)
    keys = ("epoch", "val_loss", "val_mean_f1", "val_mean_auc", "best_epoch")

    def history(fr):  # built and run one after the other: each seeds the RNG as it is built
        fr.run()
        return [{k: r[k] for k in keys} for r in _rows(fr, HISTORY)]

    clean = _fold(_cfg(tiny_cfg, tmp_path, tiny_manifest, "clean", **kw))
    want = history(clean)
    val_subjects = set(clean.val_df["subject"])
    assert val_subjects

    def poison(pool):
        pool = pool.copy()
        at = pool["subject"].isin(val_subjects)
        assert pool.loc[at, "AU02"].notna().all()  # known there before the run withholds them
        pool.loc[at, "AU02"] = 1.0 - pool.loc[at, "AU02"]
        return pool

    poisoned = _fold(_cfg(tiny_cfg, tmp_path, tiny_manifest, "poisoned", **kw), poison)
    assert len(want) == 3 and history(poisoned) == want
    assert clean.best_epoch == poisoned.best_epoch


def test_descriptions_are_drawn_afresh_for_every_training_step(tiny_manifest, tiny_cfg,
                                                               tmp_path):
    """The text the model receives at each training step (a hook on the model, in the real
    epoch loop) differs from step to step, and every AU reads rows of its own random bank:
    no row is another AU's."""
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, max_steps_per_epoch=3, epochs=1)
    fr = _fold(cfg)
    seen = []

    def spy(module, args):
        if module.training:
            seen.append(args[1].detach().clone())  # forward(images, text, text_mask, ...)

    fr.model.register_forward_pre_hook(spy)
    fr.run()
    assert len(seen) == 3 and seen[0].shape == (len(fr.aus), cfg.text_per_au, fr.text.dim)
    for a, b in zip(seen, seen[1:]):
        assert not torch.equal(a, b)
    bank = fr.text.bank

    def rows_of(au):
        return {tuple(r) for r in bank[au].tolist()}

    for i, au in enumerate(fr.aus):
        own = rows_of(au)
        others = set().union(*(rows_of(b) for b in fr.aus if b != au))
        assert not own & others  # the random control: a different vector set per AU
        got = {tuple(r) for t in seen for r in t[i].tolist()}
        assert got <= own and len(got) > 1


def test_the_kl_prior_of_each_au_is_its_own_region(tiny_manifest, tiny_cfg, tmp_path,
                                                   monkeypatch):
    """The target handed to the KL term in a training step is, for every AU, the region that AU
    alone gives on that frame's neutral face (a one-AU dataset, same transform and seed): not
    another AU's region, not the template."""
    model = dict(TINY_MODEL, input_size=64, feature_stride=16, map_prior="kl")
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, model=model, resize=72, epochs=1,
               max_steps_per_epoch=1)
    fr = _fold(cfg)
    batches, targets = [], []
    real_step, real_kl = trainer.train_micro_step, losses.map_kl

    def step_spy(net, batch, *a, **kw):
        batches.append(batch["index"].clone())
        return real_step(net, batch, *a, **kw)

    def kl_spy(maps, frac, floor):
        targets.append(frac.detach().clone())
        return real_kl(maps, frac, floor)

    monkeypatch.setattr(trainer, "train_micro_step", step_spy)
    monkeypatch.setattr(losses, "map_kl", kl_spy)
    fr.run()
    assert len(batches) == 1 and targets  # one step; the KL term ran on it
    idx, frac = batches[0].tolist(), targets[0]
    side = int(round(frac.shape[-1] ** 0.5))
    assert side * side == frac.shape[-1] and side == 4
    alone = []
    for au in fr.aus:
        ds = AUDataset(fr.train_df, (au,), fr.ds_train.transform, seed=fr.ds_train.seed)
        ds.set_epoch(0)
        discs = torch.stack([ds[j]["prior_regions"] for j in idx])  # B×1×C×3
        alone.append(disc_fractions(discs, cfg.model.input_size, (side, side)).flatten(-2)[:, 0])
    for i, au in enumerate(fr.aus):
        assert alone[i].sum() > 0, au
        torch.testing.assert_close(frac[:, i], alone[i], msg=f"AU{au}")
    au1, au12 = fr.aus.index(1), fr.aus.index(12)
    assert not torch.allclose(alone[au1], alone[au12])  # brows and lip corners differ


@pytest.mark.parametrize("metric, picked", [("loss", 2), ("mean_f1", 4)])
def test_select_metric_keeps_the_epoch_its_metric_prefers(metric, picked, tiny_manifest,
                                                          tiny_cfg, tmp_path, monkeypatch):
    """Validation is scripted per epoch: losses 0.9, 0.3, 0.5, 0.95 with wrong predictions in
    epochs 1-3 and right ones in epoch 4 (the best F1, the worst loss). ``select_metric: loss``
    keeps epoch 2 (the lowest loss), mean_f1 epoch 4: in best.safetensors (that epoch's
    weights), the history and the tested fold's metrics."""
    script = iter([(0.9, False), (0.3, False), (0.5, False), (0.95, True)])
    real = fold_eval.predict

    def scripted(model, ds, cfg, device, text, d, amp=None, loss_fn=None):
        pv = real(model, ds, cfg, device, text, d, amp, loss_fn)
        if loss_fn is None:  # not the epoch's validation
            return pv
        loss, right = next(script)
        probs = pv.targets if right else 1.0 - pv.targets
        return dataclasses.replace(pv, loss=loss, probs=probs.astype(np.float32))

    monkeypatch.setattr(fold_eval, "predict", scripted)
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, select_metric=metric, epochs=4,
               max_steps_per_epoch=1)
    fr = _fold(cfg)
    real_epoch, weights = fr.train_epoch, []

    def snapshot(epoch):
        row = real_epoch(epoch)
        weights.append({k: v.detach().clone() for k, v in fr.model.state_dict().items()})
        return row

    fr.train_epoch = snapshot
    result = fr.run()
    history = _rows(fr, HISTORY)
    assert [float(r["val_loss"]) for r in history] == [0.9, 0.3, 0.5, 0.95]
    assert fr.best_epoch == picked and result["best_epoch"] == picked
    assert int(history[-1]["best_epoch"]) == picked
    best = load_file(str(weights_file(fr.folder, "best")))
    assert best.keys() == weights[0].keys()
    assert all(torch.equal(best[k], weights[picked - 1][k]) for k in best)
    other = 4 if picked != 4 else 2
    assert not all(torch.equal(best[k], weights[other - 1][k]) for k in best)


def test_compile_trains_a_compiled_model_and_saves_the_bare_one(tiny_manifest, tiny_cfg,
                                                                 tmp_path):
    """``--compile``: the steps run the compiled model (``FoldRun.net``, compiled lazily, so
    nothing is compiled here; tests/model/test_model_compile.py compares its numbers), and the
    weights saved and resumed are the bare model's (no ``_orig_mod.`` in their keys)."""
    fr = _fold(_cfg(tiny_cfg, tmp_path, tiny_manifest, compile=True))
    fr.wrap()
    assert isinstance(fr.net, torch._dynamo.eval_frame.OptimizedModule)
    assert fr.net._orig_mod is fr.model and fr.net is not fr.model
    assert not any(k.startswith("_orig_mod") for k in fr.model.state_dict())
