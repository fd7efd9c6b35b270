"""The trainer behind ``hiva train`` and ``hiva evaluate``.

Reads: a manifest (or ``bp4d:DIR`` / ``disfa:DIR``), the embed stage's text bank. Writes, under
``cfg.out``: ``config.yaml`` (resolved), ``metrics.json`` + ``metrics.txt`` (per fold and the mean
over folds, the fold scheme used), and per fold ``fold{k}/``: ``last.safetensors`` +
``last.state.pt`` (resume), ``best.safetensors`` (epoch picked on validation), ``history.csv``
(per epoch), ``steps.csv`` (per optimizer step), ``tb/`` (TensorBoard), ``metrics.json`` (with
the train/val/test subject ids), ``test_predictions.parquet`` (per frame), ``curves.png``,
``per_au_f1.png``.

Protocol per fold k: train on the other folds, pick the epoch on a validation split of TRAINING
subjects, test once on fold k with the picked weights; thresholds tuned on validation are reported
apart. Folds: the manifest's ``fold`` column, else the standard BP4D/DISFA folds numbered as
ME-GraphAU numbers them (fold 1 tests part 3), else subject k-fold (``hiva.data.folds``).
Distributed when started by ``torchrun`` (one process per device; gloo on CPU, NCCL for CUDA
tensors beside gloo for the CPU ones); metrics are computed on all test frames gathered from every
rank, so they equal a one-process evaluation. Each rank draws its own dropout stream and its RNG
state (CPU and CUDA) is saved with the checkpoint; augmentation draws per sample from (seed,
epoch, index), so the worker count changes nothing but speed.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np

from hiva.config import write_config
from hiva.data.pack import pack_warnings
from hiva.errors import HivaError
from hiva.model.factory import build_model, load_weights, save_weights
from hiva.runs import (
    PREDICTIONS,
    RUN_CONFIG,
    fold_dir,
    is_finished,
    read_metrics,
    weights_file,
    write_metrics,
)
from hiva.runtime import (
    Dist,
    all_sum,
    amp_dtype,
    barrier,
    gather_rng,
    init_dist,
    pick_device,
    require_dir_path,
    seed_everything,
    set_rng_state,
)
from hiva.textbank import Text, load_text
from hiva.train.checkpoint import load_checkpoint, save_checkpoint
from hiva.train.config import TrainConfig
from hiva.train.feature_set import feature_sets
from hiva.train.fold_eval import fold_result, validate
from hiva.train.fold_setup import init_weights, mean_regions, model_config_for, prior_table
from hiva.train.logs import RunLogs, identity_meta, save_predictions
from hiva.train.plots import plot_fold
from hiva.train.protocol import (
    check_run_dir,
    check_zero_shot,
    make_folds,
    read_data,
    split_pool,
    summarise,
    summary_table,
    withhold_labels,
)
from hiva.train.steps import (
    LOSS_TERMS,
    LossTally,
    epoch_indices,
    loss_terms,
    lr_lambda,
    make_loader,
    optimizer_step,
    param_groups,
    predict,
    stream_seed,
    train_micro_step,
)


class FoldRun:
    """One held-out fold, in parts that can be called (and tested) on their own, like a recipe:
    ``FoldRun(...)`` sets up data, model, loss, optimiser and schedule; ``resume()`` restores the
    last checkpoint; ``train_epoch(e)`` trains, validates and checkpoints one epoch and returns its
    history row; ``test()`` scores the test fold once with the weights picked on validation.
    ``run()`` does all of it."""

    def __init__(self, cfg: TrainConfig, k: int, pool, test_df, aus, text: Text, d: Dist,
                 device):
        import torch

        from hiva.data.dataset import AUDataset
        from hiva.data.folds import occurrence_rates
        from hiva.data.transforms import eval_transform, pad_fill, train_transform
        from hiva.model.losses import au_weights_from_rates, build_loss
        from hiva.model.text import sample_text

        self.cfg, self.k, self.aus, self.text, self.d, self.device = cfg, k, aus, text, d, device
        self.folder = fold_dir(cfg.out, k)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.train_df, self.val_df, all_train = split_pool(cfg, pool)
        self.zero_shot = check_zero_shot(cfg, aus)
        # Unseen AUs: no label of theirs reaches the loss, the epoch choice or a tuned threshold
        # (validation has them unknown, so tune_thresholds keeps 0.5 for them).
        self.train_df = withhold_labels(self.train_df, self.zero_shot)
        self.val_df = withhold_labels(self.val_df, self.zero_shot)
        self.test_df = test_df
        if len(self.train_df) == 0 or len(test_df) == 0:
            raise HivaError(f"fold {k} has {len(self.train_df)} training and {len(test_df)} test "
                            "frames; use fewer folds or more subjects")
        seed = cfg.seed + 1000 * k
        det = cfg.deterministic and device.type == "cpu"
        seed_everything(seed, det)
        self.mc = mc = model_config_for(cfg, aus, text)
        self.model = build_model(mc, device, cfg.channels_last)  # the same init on every rank
        if cfg.init_from:
            init_weights(self.model, cfg.init_from, k, d.main)
        if d.rank:  # then each rank its own dropout stream
            seed_everything(seed + 104_729 * d.rank, det)
        mean, std = self.model.normalisation()
        if d.main:
            for line in pack_warnings(self.train_df, pad_fill(mean), cfg.resize_to):
                print(line, flush=True)
        tf_train = train_transform(mean, std, size=mc.input_size, resize=cfg.resize_to,
                                   jitter=cfg.jitter, flip=cfg.flip, normalise=False)
        tf_eval = eval_transform(mean, std, mc.input_size, cfg.resize_to, normalise=False)
        table = prior_table(cfg, aus)  # None: the FACS regions
        ds = functools.partial(AUDataset, intensity=mc.has_intensity)  # + AUxx_intensity
        self.ds_train = ds(self.train_df, aus, tf_train, seed=seed, prior_table=table)
        self.ds_val = ds(self.val_df, aus, tf_eval) if len(self.val_df) else None
        self.ds_test = ds(test_df, aus, tf_eval)
        if mc.map_prior != "none":
            if self.ds_train.landmarks is None:
                raise HivaError(
                    f"model map_prior={mc.map_prior} needs face landmarks, and {cfg.data} has "
                    "none (no landmarks column or landmark_scheme); render the set again with "
                    "`hiva data synth` or align real faces with `hiva data align`, or set "
                    "map_prior none")
            self.model.set_region_template(mean_regions(AUDataset(
                self.train_df, aus, tf_eval, region_table=table, prior_table=table)))

        rates = occurrence_rates(self.train_df, aus)
        self.loss_fn = build_loss(mc, au_weights_from_rates(np.nan_to_num(rates, nan=0.0))
                                  .to(device))
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg), lr=cfg.lr)
        # schedule "steps": an epoch is as many samples as the whole training set would give, so a
        # 10%-label run takes as many optimizer steps as the full one (cycling its share).
        self.epoch_len = len(all_train) if cfg.schedule == "steps" else len(self.ds_train)
        per_rank = math.ceil(self.epoch_len / d.world)
        self.drop = per_rank >= cfg.batch_size  # BatchNorm needs > 1 sample: drop the tail
        batches = per_rank // cfg.batch_size if self.drop else 1
        if cfg.max_steps_per_epoch:
            batches = min(batches, cfg.max_steps_per_epoch * cfg.grad_accum)
        # Micro-batches per optimizer step: grad_accum, or every batch of an epoch that holds
        # fewer (else its one planned step would never come and the run would not train).
        self.accum = min(cfg.grad_accum, batches)
        self.steps_per_epoch = batches // self.accum
        self.total = self.steps_per_epoch * cfg.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(self.total, int(cfg.warmup_fraction * self.total),
                                cfg.min_lr_fraction))
        self.amp = amp_dtype(cfg.amp, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.start_epoch, self.step, self.best, self.best_epoch = 0, 0, -math.inf, -1
        self.meta = identity_meta(mc, text, {})
        self.val_text = (sample_text(text.bank, aus, cfg.eval_text_per_au, train=False)
                         if text.bank is not None else None)
        self.net = self.model
        self.logs: RunLogs | None = None

    def resume(self) -> None:
        """Continue from ``last.safetensors`` + ``last.state.pt`` when they exist."""
        cfg, k, d = self.cfg, self.k, self.d
        got = load_checkpoint(self.folder, self.model,
                              (self.aus, self.text.fingerprint, self.text.encoder))
        if got is None:
            return
        state, _ = got
        self.start_epoch, self.step = int(state["epoch"]) + 1, int(state["step"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])  # the step count; the lambda is new
        self.scaler.load_state_dict(state["scaler"])
        ranks = state.get("rng") or [{"cpu": state["rng_cpu"]}]
        if len(ranks) == d.world:
            set_rng_state(ranks[d.rank], self.device)
        elif d.main:
            print(f"fold {k}: the checkpoint holds RNG states of {len(ranks)} process(es), "
                  f"this run has {d.world}: dropout streams start afresh", flush=True)
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        old_epochs = int(state.get("epochs", cfg.epochs))
        if d.main:
            print(f"fold {k}: resumed after epoch {self.start_epoch} (step {self.step})",
                  flush=True)
            if old_epochs != cfg.epochs:
                print(f"fold {k}: schedule extended from {old_epochs} to {cfg.epochs} epochs "
                      f"(the cosine now ends at step {self.total}; it continues from step "
                      f"{self.step})", flush=True)

    def wrap(self) -> None:
        """Compile and/or wrap in DDP (after any resume, which loads into the bare model)."""
        import torch

        if self.cfg.compile:
            self.net = torch.compile(self.model)
        if self.d.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.net, find_unused_parameters=True,
                           device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def use_features(self) -> None:
        """Heads-only (``model.freeze_backbone``): swap the image datasets for in-memory feature
        sets, read from the feature cache or computed into it (``hiva.train.feature_set``):
        training draws among ``feature_views`` views, validation and test read view 0 (the eval
        transform). Once, after any resume (the backbone's weights are in the cache key)."""
        if not self.mc.freeze_backbone or hasattr(self.ds_test, "batches"):
            return

        sets = [self.ds_train, self.ds_val, self.ds_test]
        views = [self.cfg.feature_views, 1, 1]
        self.ds_train, self.ds_val, self.ds_test = feature_sets(
            self.model, self.cfg, sets, views, self.device, self.d, desc=f"fold {self.k} features")

    def train_steps(self, epoch: int):
        """Epoch ``epoch``'s optimizer steps, the loss kept on the device (``LossTally``, which
        the host reads every ``FLUSH_EVERY`` steps and not in between). Returns the tally, not
        read since its last flush, and the count of frames skipped."""
        import torch
        from tqdm import tqdm

        from hiva.model.text import sample_text

        cfg, k, d, aus = self.cfg, self.k, self.d, self.aus
        bank = self.text.bank
        net = self.net
        net.train()
        self.ds_train.set_epoch(epoch)
        idx = epoch_indices(len(self.ds_train), epoch, cfg.seed + k, d, self.epoch_len)
        loader = make_loader(self.ds_train, idx, cfg.batch_size, cfg, self.device,
                             seed=stream_seed("loader", cfg.seed, epoch, d.rank),
                             drop_last=self.drop)
        gen = torch.Generator().manual_seed(stream_seed("text", cfg.seed, epoch, d.rank))
        bar = tqdm(total=self.steps_per_epoch, desc=f"fold {k} epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not (cfg.progress and d.main), dynamic_ncols=True)
        tally = LossTally(self.device, d, self.logs.steps, bar)
        skipped = micro = 0
        self.opt.zero_grad(set_to_none=True)
        for batch in loader:
            if micro >= self.steps_per_epoch * self.accum:
                break
            if batch is None:
                skipped += cfg.batch_size
                continue
            skipped += int(batch["skipped"])  # the collated batch's count, on the host
            txt = (sample_text(bank, aus, cfg.text_per_au, gen, train=True)
                   if bank is not None else None)
            last_micro = (micro + 1) % self.accum == 0
            parts = train_micro_step(
                net, batch, txt, self.loss_fn, self.scaler, self.device, self.amp,
                channels_last=cfg.channels_last, grad_accum=self.accum,
                sync=net.no_sync() if (d.world > 1 and not last_micro) else None)
            tally.add(parts)
            micro += 1
            if not last_micro:
                continue
            optimizer_step(self.model, self.opt, self.sched, self.scaler, cfg.grad_clip)
            self.step += 1
            tally.step(self.step, epoch + 1, self.sched.get_last_lr()[-1], parts["total"])
            bar.update(1)
        return tally, skipped

    def train_epoch(self, epoch: int) -> dict:
        """Train epoch ``epoch`` (from 0), validate, save best/last; returns the history row."""
        self.use_features()
        cfg, k, d, aus = self.cfg, self.k, self.d, self.aus
        t0 = time.perf_counter()
        tally, skipped = self.train_steps(epoch)
        sums = tally.flush(close=True)  # before the checkpoint, so a resume finds every row
        secs = time.perf_counter() - t0
        n_seen = tally.seen
        *tot, seen, skipped = all_sum([*sums, float(n_seen), float(skipped)], d)
        if seen == 0:
            raise HivaError(f"fold {k} epoch {epoch + 1}: no training image could be read "
                            f"({int(skipped)} skipped, e.g. {self.train_df['path'].iloc[0]}); "
                            "check that the manifest's paths point at the images")
        mean = {t: v / seen for t, v in zip(LOSS_TERMS, tot)}
        row = {"epoch": epoch + 1, "step": self.step, "train_loss": mean["total"],
               **{f"train_{t}": mean[t] for t in ("cls", "align", "map_kl")},
               "lr": self.sched.get_last_lr()[-1], "seconds": round(secs, 2),
               "images_per_s": round(n_seen * cfg.batch_size * d.world / max(secs, 1e-9), 2),
               "skipped": int(skipped)}
        for term in loss_terms(self.mc):
            row[f"train_{term}"] = mean[term]
        vrow, score = validate(self.model, self.ds_val, cfg, self.device, self.val_text, d,
                                self.amp, self.loss_fn, aus, epoch + 1)
        row.update(vrow)
        if improved := score > self.best:
            self.best, self.best_epoch = score, epoch + 1
            if d.main:
                save_weights(self.model, weights_file(self.folder, "best"),
                             identity_meta(self.mc, self.text,
                                           {"epoch": epoch + 1, "step": self.step}))
        row["best_epoch"] = self.best_epoch
        self.logs.epoch(row, self.step)
        ranks = gather_rng(self.device, d)
        if d.main:
            state = {
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": ranks, "epochs": cfg.epochs,
                "epoch": epoch, "step": self.step, "best": self.best,
                "best_epoch": self.best_epoch,
            }
            save_checkpoint(self.folder, self.model, state,
                            dict(self.meta, epoch=epoch + 1, step=self.step))
            extra = f" val F1 {100 * row['val_mean_f1']:.1f}" if "val_mean_f1" in row else ""
            print(f"fold {k} epoch {epoch + 1}: loss {mean['total']:.4f}{extra} "
                  f"({row['images_per_s']:.1f} img/s){' *' if improved else ''}", flush=True)
        barrier(d)
        return row

    def test(self) -> dict:
        """Test once, with the weights of the epoch picked on validation; writes the fold's
        metrics.json, test_predictions.parquet and plots."""
        self.use_features()
        cfg, d, aus = self.cfg, self.d, self.aus
        ck_meta = load_weights(self.model, weights_file(self.folder, "best"))
        pt = predict(self.model, self.ds_test, cfg, self.device, self.val_text, d, self.amp)
        result = fold_result(self, pt, int(ck_meta.get("epoch", self.best_epoch)))
        if d.main:
            save_predictions(self.folder / PREDICTIONS, self.test_df, aus, pt)
            write_metrics(self.folder, result)
            if cfg.plots:
                plot_fold(self.folder, result)
        barrier(d)
        return result

    def run(self) -> dict:
        if self.cfg.resume == "latest":
            self.resume()
        self.logs = RunLogs(self.folder, self.d.main, self.cfg.tensorboard, self.step,
                            self.start_epoch)
        self.wrap()
        for epoch in range(self.start_epoch, self.cfg.epochs):
            self.train_epoch(epoch)
        self.logs.close()
        return self.test()


def train_fold(cfg: TrainConfig, k: int, pool, test_df, aus, text: Text, d: Dist, device) -> dict:
    """Train and test fold ``k`` (see ``FoldRun``)."""
    return FoldRun(cfg, k, pool, test_df, aus, text, d, device).run()


def run(cfg: TrainConfig) -> dict:
    """Train and test every requested fold; returns (and writes) the metrics summary."""
    out = require_dir_path(cfg.out, "--out")
    d = init_dist(cfg.device)
    device = pick_device(cfg.device, d)
    df, scheme, aus = read_data(cfg, d)
    check_zero_shot(cfg, aus)
    text = load_text(cfg.model, aus, cfg.text_bank, cfg.text_encoder)
    scheme, folds = make_folds(cfg, df, scheme)
    if d.main:
        check_run_dir(cfg, out)
        out.mkdir(parents=True, exist_ok=True)
        write_config(cfg, out / RUN_CONFIG)
        from hiva.data.folds import describe_scheme

        print("folds: " + ("one subject-exclusive train/test split (test_fraction)"
                           if scheme == "split" else
                           describe_scheme(scheme, cfg.num_folds, cfg.fold_seed)), flush=True)
        from hiva.data.manifest import warn_if_unaligned

        warn_if_unaligned(df)
    barrier(d)
    results = {}
    for k, pool, test_df in folds:
        done = fold_dir(out, k)
        if cfg.resume == "latest" and is_finished(done):
            prev = read_metrics(done)
            if int(prev.get("epochs", cfg.epochs)) == cfg.epochs:
                results[k] = prev
                continue  # finished; a larger --epochs trains it on from its last checkpoint
        results[k] = train_fold(cfg, k, pool, test_df, aus, text, d, device)
    summary = summarise(results, aus)
    summary["world_size"] = d.world
    summary["fold_scheme"] = scheme
    if d.main:
        table = summary_table(summary)
        write_metrics(out, summary, table)
        print(table, flush=True)
    return summary
