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

import csv
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.config import config_dict, write_config
from hiva.errors import HivaError
from hiva.model.factory import build_model, check_identity, load_weights, read_meta, save_weights
from hiva.runtime import (
    Dist,
    all_sum,
    amp_dtype,
    atomic_write,
    barrier,
    gather_rng,
    init_dist,
    pick_device,
    seed_everything,
    set_rng_state,
)
from hiva.textbank import Text, load_text
from hiva.train.checkpoint import load_checkpoint, save_checkpoint
from hiva.train.config import TrainConfig
from hiva.train.metrics import au_metrics, format_table, mean_over_folds, tune_thresholds

# Keys that may change between a run and its resume without changing what is computed.
_RESUME_FREE = {"resume", "progress", "num_workers", "folds", "tensorboard", "plots", "out",
                "eval_batch_size", "device", "epochs"}  # epochs: a resume may train longer


def load_data(spec: str):
    """(manifest DataFrame, default fold scheme) for a manifest path, ``bp4d:DIR`` or
    ``disfa:DIR``."""
    from hiva.data.manifest import read_manifest

    if not spec:
        raise HivaError("no training data; pass --data MANIFEST.parquet, bp4d:DIR or disfa:DIR")
    kind, _, rest = spec.partition(":")
    if kind in ("bp4d", "disfa") and rest:
        from hiva.data import importers

        fn = importers.import_bp4d if kind == "bp4d" else importers.import_disfa
        df, _report = fn(rest)
        return df, kind
    return read_manifest(spec), "auto"


def resolve_aus(cfg: TrainConfig, df) -> tuple[int, ...]:
    from hiva.data.manifest import manifest_aus
    from hiva.facs import parse_aus

    have = manifest_aus(df)
    if cfg.aus is None:
        return have
    want = parse_aus(cfg.aus)
    missing = [a for a in want if a not in have]
    if missing:
        raise HivaError(
            f"the data has no label column for AU {', '.join(map(str, missing))}; "
            f"it labels {', '.join(map(str, have))}: pass --aus from those"
        )
    return want


def model_config_for(cfg: TrainConfig, aus, text: Text):
    mc = cfg.model_config(aus)
    if text.dim is not None and mc.text_dim != text.dim:
        if "text_dim" in cfg.model:
            raise HivaError(f"model.text_dim {mc.text_dim} differs from the text bank's width "
                            f"{text.dim}; drop text_dim from the config")
        from dataclasses import replace

        mc = replace(mc, text_dim=text.dim)
    return mc


def make_folds(cfg: TrainConfig, df, scheme: str):
    """(scheme used, [(k, train_pool_df, test_df)] for the folds to run).

    ``scheme`` is the data's default (``bp4d``/``disfa`` for raw trees, ``auto`` for a manifest);
    ``cfg.fold_scheme`` other than auto overrides it. ``auto`` resolves to the manifest's ``fold``
    column, else the standard BP4D/DISFA folds when the subjects are theirs, else subject k-fold.
    """
    from hiva.data.folds import assign_folds, resolve_scheme, split_train_val

    if cfg.num_folds == 1:
        train, test = split_train_val(df, cfg.test_fraction, cfg.fold_seed)
        return "split", [(1, train, test)]
    scheme = resolve_scheme(df, scheme if cfg.fold_scheme == "auto" else cfg.fold_scheme)
    if scheme in ("bp4d", "disfa") and cfg.num_folds != 3:
        raise HivaError(f"the {scheme} protocol has 3 folds; use --num-folds 3 (or 1)")
    fold = assign_folds(df, scheme, cfg.num_folds, cfg.fold_seed)
    have = sorted(set(fold.tolist()))
    if have != list(range(1, cfg.num_folds + 1)):
        raise HivaError(f"the {scheme} folds of this data are {have}, not 1..{cfg.num_folds}; "
                        f"pass --num-folds {max(have)} or --fold-scheme kfold")
    wanted = cfg.folds or tuple(range(1, cfg.num_folds + 1))
    return scheme, [(k, df[fold != k], df[fold == k]) for k in wanted]


def split_pool(cfg: TrainConfig, pool):
    """Training pool → (train, val): labelled fraction first, then subjects held out for val."""
    from hiva.data.folds import split_train_val

    if cfg.label_fraction < 1.0:
        pool = pool.sample(frac=cfg.label_fraction, random_state=cfg.seed).sort_index()
    return split_train_val(pool, cfg.val_fraction, cfg.seed)


def param_groups(model, cfg: TrainConfig):
    """Backbone at lr × backbone_lr_mult; no weight decay on biases, norms, scalars."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name.startswith("backbone."), p.ndim <= 1)
        groups.setdefault(key, []).append(p)
    out = []
    for (is_bb, no_decay), params in sorted(groups.items()):
        out.append({
            "params": params,
            "lr": cfg.lr * (cfg.backbone_lr_mult if is_bb else 1.0),
            "weight_decay": 0.0 if no_decay else cfg.weight_decay,
        })
    return out


def lr_lambda(total: int, warmup: int, min_frac: float):
    """Linear warmup to 1 then cosine down to ``min_frac`` at ``total`` optimizer steps."""
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * t))

    return f


# --------------------------------------------------------------------------- loaders
def _loader(ds, indices, batch_size, cfg: TrainConfig, device, seed: int, drop_last: bool):
    import torch
    from torch.utils.data import DataLoader

    from hiva.data.dataset import collate_skip

    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds, batch_size=batch_size, sampler=list(indices), num_workers=cfg.num_workers,
        collate_fn=collate_skip, pin_memory=device.type == "cuda", drop_last=drop_last,
        generator=g, persistent_workers=False,
    )


def epoch_indices(n: int, epoch: int, seed: int, d: Dist) -> list[int]:
    """This rank's shuffled share of 0..n-1 for ``epoch``; the same on every resume.

    Like DistributedSampler: one permutation from (seed, epoch), padded to a multiple of the world
    size, then rank::world."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n).tolist()
    if d.world > 1:
        pad = (-len(perm)) % d.world
        perm += perm[:pad]
        perm = perm[d.rank::d.world]
    return perm


# --------------------------------------------------------------------------- steps
# The training and evaluation steps take the device explicitly: tests run them with the model on
# PyTorch's meta device, where any tensor left on the CPU raises (no GPU needed to find one).
def batch_to(batch: dict, device, channels_last: bool):
    """(images, targets, known-label mask) of a collated batch, on ``device``."""
    import torch

    x = batch["image"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x, batch["target"].to(device, non_blocking=True),
            batch["mask"].to(device, non_blocking=True))


def forward(net, x, text, amp):
    """The model's output for images ``x`` and ``text`` = (N×M×D, N×M mask) or None."""
    import torch

    txt, tmask = text if text is not None else (None, None)
    ctx = torch.autocast(x.device.type, dtype=amp) if amp is not None else nullcontext()
    with ctx:
        return net(x, txt, tmask)


def train_micro_step(net, batch: dict, text, loss_fn, scaler, device, amp, *,
                     channels_last: bool, grad_accum: int = 1, sync=None) -> dict:
    """Forward, loss and backward of one micro-batch; returns the detached loss parts."""
    x, y, m = batch_to(batch, device, channels_last)
    with sync if sync is not None else nullcontext():
        out = forward(net, x, text, amp)
        loss, parts = loss_fn(out, y, m)
        scaler.scale(loss / grad_accum).backward()
    return parts


def optimizer_step(model, opt, sched, scaler, grad_clip: float | None) -> None:
    """Clip (after unscaling), step, update the scaler, zero the grads, advance the schedule."""
    import torch

    if grad_clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    sched.step()


def eval_step(model, batch: dict, text, device, amp, *, channels_last: bool, loss_fn=None):
    """(model output, loss or None) for one batch, without gradients."""
    import torch

    x, y, m = batch_to(batch, device, channels_last)
    with torch.no_grad():
        out = forward(model, x, text, amp)
        loss = loss_fn(out, y, m)[0] if loss_fn is not None else None
    return out, loss


# --------------------------------------------------------------------------- evaluation
@dataclass
class Predictions:
    """Per-frame outputs over a dataset, in dataset order: ``index`` (row of the dataset; frames
    whose image could not be read are absent), ``probs``/``targets``/``mask`` (frames × AUs)."""

    index: np.ndarray
    probs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    loss: float


def predict(model, ds, cfg: TrainConfig, device, text, d: Dist, amp=None,
            loss_fn=None) -> Predictions:
    """Predictions over all of ``ds``, gathered from every rank in dataset order (each rank
    scores rank::world, no padding, so no frame counts twice)."""
    idx = list(range(d.rank, len(ds), d.world))
    bs = cfg.eval_batch_size or cfg.batch_size
    loader = _loader(ds, idx, bs, cfg, device, cfg.seed, drop_last=False)
    model.eval()
    rows, probs, tgts, masks = [], [], [], []
    loss_sum, loss_n = 0.0, 0
    for batch in loader:
        if batch is None:
            continue
        out, loss = eval_step(model, batch, text, device, amp,
                              channels_last=cfg.channels_last, loss_fn=loss_fn)
        if loss is not None:
            loss_sum += float(loss) * len(batch["index"])
            loss_n += len(batch["index"])
        rows.append(batch["index"].numpy())
        probs.append(out.probs.float().cpu().numpy())
        tgts.append(batch["target"].numpy())
        masks.append(batch["mask"].numpy())
    n_aus = len(ds.aus)
    local = (
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        np.concatenate(probs) if probs else np.zeros((0, n_aus), np.float32),
        np.concatenate(tgts) if tgts else np.zeros((0, n_aus), np.float32),
        np.concatenate(masks) if masks else np.zeros((0, n_aus), bool),
    )
    if d.world > 1:
        import torch.distributed as dist

        parts = [None] * d.world
        dist.all_gather_object(parts, local)
        local = tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
        loss_sum, loss_n = all_sum([loss_sum, float(loss_n)], d)
    order = np.argsort(local[0], kind="stable")
    i, p, y, m = (a[order] for a in local)
    return Predictions(i, p, y, m, loss_sum / loss_n if loss_n else float("nan"))


def save_predictions(path: Path, df, aus, pr: Predictions) -> None:
    """Per-frame test predictions (path, subject, sequence, frame, then p/y per AU; y null where
    unknown) as Parquet: what subject-level bootstraps and error analysis read."""
    import pandas as pd

    rows = df.iloc[pr.index]
    out = pd.DataFrame({c: rows[c].to_numpy() for c in ("path", "subject", "sequence", "frame")})
    for j, a in enumerate(aus):
        out[f"p_AU{int(a):02d}"] = pr.probs[:, j].astype(np.float32)
        y = pd.array(pr.targets[:, j].astype(np.int8), dtype="Int8")
        y[~pr.mask[:, j]] = pd.NA
        out[f"y_AU{int(a):02d}"] = y
    atomic_write(path, lambda tmp: out.to_parquet(tmp, index=False))


# --------------------------------------------------------------------------- training
class _Logs:
    """history.csv, steps.csv and TensorBoard, written by rank 0 only; on resume rows after the
    checkpoint are dropped so nothing doubles."""

    def __init__(self, folder: Path, main: bool, tensorboard: bool, keep_step: int,
                 keep_epoch: int):
        self.folder, self.main = folder, main
        self.tb = None
        if not main:
            return
        for name, key, keep in (("steps.csv", "step", keep_step),
                                ("history.csv", "epoch", keep_epoch)):
            path = folder / name
            if path.exists():
                with open(path, newline="") as f:
                    rows = [r for r in csv.DictReader(f) if int(r[key]) <= keep]
                self._write(path, rows, mode="w")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(folder / "tb"), purge_step=keep_step + 1)

    @staticmethod
    def _write(path: Path, rows: list[dict], mode: str = "a") -> None:
        if not rows:
            if mode == "w":
                path.unlink(missing_ok=True)
            return
        new = mode == "w" or not path.exists()
        with open(path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)

    def step(self, row: dict) -> None:
        if self.main:
            self._write(self.folder / "steps.csv", [row])
            if self.tb is not None:
                for k, v in row.items():
                    if k != "step":
                        self.tb.add_scalar(f"train/{k}", v, row["step"])

    def epoch(self, row: dict, step: int) -> None:
        if self.main:
            self._write(self.folder / "history.csv", [row])
            if self.tb is not None:
                for k, v in row.items():
                    if k != "epoch" and isinstance(v, (int, float)) and v == v:
                        self.tb.add_scalar(f"epoch/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _identity_meta(mc, text: Text, extra: dict) -> dict:
    return dict(
        aus=list(mc.aus), text_fingerprint=text.fingerprint or "", text_encoder=text.encoder or "",
        model_config=config_dict(mc), **extra,
    )


def _validate(model, ds_val, cfg: TrainConfig, device, text, d: Dist, amp, loss_fn, aus,
              epoch: int) -> tuple[dict, float]:
    """(history columns, selection score) of one epoch; higher score = better. Without a
    validation set the last epoch is the pick."""
    if ds_val is None:
        return {}, float(epoch)
    pv = predict(model, ds_val, cfg, device, text, d, amp, loss_fn)
    vm = au_metrics(pv.probs, pv.targets, pv.mask, aus)
    score = vm["mean_f1"] if cfg.select_metric == "mean_f1" else -pv.loss
    row = {"val_loss": pv.loss, "val_mean_f1": vm["mean_f1"], "val_mean_auc": vm["mean_auc"]}
    return row, (-math.inf if score != score else score)


def _subjects(df) -> list[str]:
    return sorted(set(df["subject"].astype(str)))


def train_fold(cfg: TrainConfig, k: int, pool, test_df, aus, text: Text, d: Dist, device) -> dict:
    import torch

    from hiva.data.dataset import AUDataset
    from hiva.data.folds import occurrence_rates
    from hiva.data.transforms import eval_transform, train_transform
    from hiva.model.losses import HiVALoss, au_weights_from_rates
    from hiva.model.text import sample_text

    folder = Path(cfg.out) / f"fold{k}"
    folder.mkdir(parents=True, exist_ok=True)
    train_df, val_df = split_pool(cfg, pool)
    if len(train_df) == 0 or len(test_df) == 0:
        raise HivaError(f"fold {k} has {len(train_df)} training and {len(test_df)} test frames; "
                        "use fewer folds or more subjects")
    seed = cfg.seed + 1000 * k
    seed_everything(seed, cfg.deterministic and device.type == "cpu")
    mc = model_config_for(cfg, aus, text)
    model = build_model(mc, device, cfg.channels_last)  # the same init on every rank
    if d.rank:  # then each rank its own dropout stream
        seed_everything(seed + 104_729 * d.rank, cfg.deterministic and device.type == "cpu")
    mean, std = model.normalisation()
    size = mc.input_size
    tf_train = train_transform(mean, std, size=size, resize=cfg.resize_to, jitter=cfg.jitter,
                               flip=cfg.flip)
    tf_eval = eval_transform(mean, std, size=size, resize=cfg.resize_to)
    ds_train = AUDataset(train_df, aus, tf_train, seed=seed)
    ds_val = AUDataset(val_df, aus, tf_eval) if len(val_df) else None
    ds_test = AUDataset(test_df, aus, tf_eval)

    rates = occurrence_rates(train_df, aus)
    loss_fn = HiVALoss(mc, au_weights_from_rates(np.nan_to_num(rates, nan=0.0)).to(device))
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    per_rank = math.ceil(len(ds_train) / d.world)
    drop = per_rank >= cfg.batch_size  # BatchNorm needs > 1 sample; drop the ragged tail
    batches = per_rank // cfg.batch_size if drop else 1
    if cfg.max_steps_per_epoch:
        batches = min(batches, cfg.max_steps_per_epoch * cfg.grad_accum)
    steps_per_epoch = max(1, batches // cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(total, int(cfg.warmup_fraction * total), cfg.min_lr_fraction))
    amp = amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    start_epoch, step, best, best_epoch = 0, 0, -math.inf, -1
    meta = _identity_meta(mc, text, {})
    if cfg.resume == "latest":
        got = load_checkpoint(folder, model, (aus, text.fingerprint, text.encoder))
        if got is not None:
            state, _ = got
            start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])  # the step count; the lambda is new
            scaler.load_state_dict(state["scaler"])
            ranks = state.get("rng") or [{"cpu": state["rng_cpu"]}]
            if len(ranks) == d.world:
                set_rng_state(ranks[d.rank], device)
            elif d.main:
                print(f"fold {k}: the checkpoint holds RNG states of {len(ranks)} process(es), "
                      f"this run has {d.world}: dropout streams start afresh", flush=True)
            best, best_epoch = float(state["best"]), int(state["best_epoch"])
            old_epochs = int(state.get("epochs", cfg.epochs))
            if d.main:
                print(f"fold {k}: resumed after epoch {start_epoch} (step {step})", flush=True)
                if old_epochs != cfg.epochs:
                    print(f"fold {k}: schedule extended from {old_epochs} to {cfg.epochs} epochs "
                          f"(the cosine now ends at step {total}; it continues from step {step})",
                          flush=True)
    logs = _Logs(folder, d.main, cfg.tensorboard, step, start_epoch)

    net = model
    if cfg.compile:
        net = torch.compile(model)
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=True)
    bank = text.bank
    val_text = (sample_text(bank, aus, cfg.eval_text_per_au, train=False)
                if bank is not None else None)

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        ds_train.set_epoch(epoch)
        idx = epoch_indices(len(ds_train), epoch, cfg.seed + k, d)
        loader = _loader(ds_train, idx, cfg.batch_size, cfg, device,
                         seed=cfg.seed * 7919 + epoch * 131 + d.rank, drop_last=drop)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 1009 + d.rank)
        from tqdm import tqdm

        bar = tqdm(total=steps_per_epoch, desc=f"fold {k} epoch {epoch + 1}/{cfg.epochs}",
                   unit="step", disable=not (cfg.progress and d.main), dynamic_ncols=True)
        sums = np.zeros(3)
        n_seen = skipped = micro = 0
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for batch in loader:
            if micro >= steps_per_epoch * cfg.grad_accum:
                break
            if batch is None:
                skipped += cfg.batch_size
                continue
            skipped += int(batch["skipped"])
            txt = (sample_text(bank, aus, cfg.text_per_au, gen, train=True)
                   if bank is not None else None)
            last_micro = (micro + 1) % cfg.grad_accum == 0
            parts = train_micro_step(
                net, batch, txt, loss_fn, scaler, device, amp, channels_last=cfg.channels_last,
                grad_accum=cfg.grad_accum,
                sync=net.no_sync() if (d.world > 1 and not last_micro) else None)
            sums += [float(parts["total"]), float(parts["cls"]),
                     float(parts.get("align", torch.zeros(())))]
            n_seen += 1
            micro += 1
            if not last_micro:
                continue
            optimizer_step(model, opt, sched, scaler, cfg.grad_clip)
            step += 1
            step_loss = all_sum([float(parts["total"])], d)[0] / d.world
            logs.step({"step": step, "epoch": epoch + 1, "loss": round(step_loss, 6),
                       "lr": sched.get_last_lr()[-1]})
            bar.set_postfix(loss=f"{sums[0] / n_seen:.4f}")
            bar.update(1)
        bar.close()
        secs = time.perf_counter() - t0
        tot = all_sum([*sums.tolist(), float(n_seen), float(skipped)], d)
        if tot[3] == 0:
            raise HivaError(f"fold {k} epoch {epoch + 1}: no training image could be read "
                            f"({int(tot[4])} skipped, e.g. {train_df['path'].iloc[0]}); check "
                            "that the manifest's paths point at the images")
        train_loss = [v / tot[3] for v in tot[:3]]
        row = {"epoch": epoch + 1, "step": step, "train_loss": train_loss[0],
               "train_cls": train_loss[1], "train_align": train_loss[2],
               "lr": sched.get_last_lr()[-1], "seconds": round(secs, 2),
               "images_per_s": round(n_seen * cfg.batch_size * d.world / max(secs, 1e-9), 2),
               "skipped": int(tot[4])}
        vrow, score = _validate(model, ds_val, cfg, device, val_text, d, amp, loss_fn, aus,
                                epoch + 1)
        row.update(vrow)
        improved = score > best
        if improved:
            best, best_epoch = score, epoch + 1
            if d.main:
                save_weights(model, folder / "best.safetensors",
                             _identity_meta(mc, text, {"epoch": epoch + 1, "step": step}))
        row["best_epoch"] = best_epoch
        logs.epoch(row, step)
        ranks = gather_rng(device, d)
        if d.main:
            state = {
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(), "rng": ranks, "epochs": cfg.epochs,
                "epoch": epoch, "step": step, "best": best, "best_epoch": best_epoch,
            }
            save_checkpoint(folder, model, state, dict(meta, epoch=epoch + 1, step=step))
            extra = f" val F1 {100 * row['val_mean_f1']:.1f}" if "val_mean_f1" in row else ""
            print(f"fold {k} epoch {epoch + 1}: loss {train_loss[0]:.4f}{extra} "
                  f"({row['images_per_s']:.1f} img/s){' *' if improved else ''}", flush=True)
        barrier(d)
    logs.close()

    # Test once, with the weights of the epoch picked on validation.
    ck_meta = load_weights(model, folder / "best.safetensors")
    pt = predict(model, ds_test, cfg, device, val_text, d, amp)
    result = {"fold": k, "epochs": cfg.epochs,
              "best_epoch": int(ck_meta.get("epoch", best_epoch)),
              "frames": {"train": len(ds_train), "val": len(ds_val or []), "test": len(ds_test),
                         "test_scored": len(pt.index)},
              "subjects": {"train": int(train_df["subject"].nunique()),
                           "val": int(val_df["subject"].nunique()),
                           "test": int(test_df["subject"].nunique())},
              "subject_ids": {"train": _subjects(train_df), "val": _subjects(val_df),
                              "test": _subjects(test_df)},
              "test": au_metrics(pt.probs, pt.targets, pt.mask, aus)}
    if cfg.tune_thresholds and ds_val is not None:
        pv = predict(model, ds_val, cfg, device, val_text, d, amp)
        th = tune_thresholds(pv.probs, pv.targets, pv.mask)
        result["test_tuned"] = au_metrics(pt.probs, pt.targets, pt.mask, aus, thresholds=th)
    if d.main:
        save_predictions(folder / "test_predictions.parquet", test_df, aus, pt)
        atomic_write(folder / "metrics.json",
                     lambda p: p.write_text(json.dumps(result, indent=2)))
        if cfg.plots:
            from hiva.train.plots import plot_fold

            plot_fold(folder, result)
    barrier(d)
    return result


def _check_run_dir(cfg: TrainConfig, out: Path) -> None:
    import yaml

    old_file = out / "config.yaml"
    if not old_file.exists():
        return
    started = any(out.glob("fold*/last.safetensors"))
    if cfg.resume != "latest":
        if started:
            raise HivaError(f"{out} already holds a run; pass --resume latest to continue it, or "
                            "a new --out")
        return
    old = yaml.safe_load(old_file.read_text()) or {}
    new = config_dict(cfg)
    if int(old.get("epochs", cfg.epochs)) > cfg.epochs:
        raise HivaError(f"{out} was set to train {old['epochs']} epochs; --resume latest may "
                        f"train longer, not shorter: pass --epochs {old['epochs']} or more, or a "
                        "new --out")
    diff = sorted(k for k in set(old) | set(new)
                  if k not in _RESUME_FREE and old.get(k) != new.get(k))
    if diff:
        more = f" (+{len(diff) - 5} more)" if len(diff) > 5 else ""
        raise HivaError(f"--resume latest with other settings than {out}/config.yaml "
                        f"({', '.join(diff[:5])}{more}); use the same settings or a new --out")


def check_images(df, source: str, d: Dist) -> None:
    """An error when none of ``df``'s images exists; a warning naming the count when some are
    missing (those frames are skipped, and counted per epoch and at test)."""
    exists = df["path"].map(os.path.isfile)
    missing = int((~exists).sum())
    if missing == len(df):
        raise HivaError(f"none of the {len(df)} images of {source} exists (e.g. "
                        f"{df['path'].iloc[0]}); the manifest's paths are relative to its folder: "
                        "move it back beside its images or rebuild it")
    if missing and d.main:
        print(f"warning: {missing} of {len(df)} images of {source} are missing (e.g. "
              f"{df['path'][~exists].iloc[0]}); those frames are skipped", flush=True)


def run(cfg: TrainConfig) -> dict:
    """Train and test every requested fold; returns (and writes) the metrics summary."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise HivaError(f"--out {out} is a file; pass a folder for the run")
    d = init_dist(cfg.device)
    device = pick_device(cfg.device, d)
    df, scheme = load_data(cfg.data)
    check_images(df, cfg.data, d)
    aus = resolve_aus(cfg, df)
    text = load_text(cfg.model.get("text_mode", "corpus"), aus, cfg.text_bank, cfg.text_encoder)
    scheme, folds = make_folds(cfg, df, scheme)
    if d.main:
        _check_run_dir(cfg, out)
        out.mkdir(parents=True, exist_ok=True)
        write_config(cfg, out / "config.yaml")
        from hiva.data.folds import describe_scheme

        print("folds: " + ("one subject-exclusive train/test split (test_fraction)"
                           if scheme == "split" else
                           describe_scheme(scheme, cfg.num_folds, cfg.fold_seed)), flush=True)
        from hiva.data.manifest import warn_if_unaligned

        warn_if_unaligned(df)
    barrier(d)
    results = {}
    for k, pool, test_df in folds:
        done = out / f"fold{k}" / "metrics.json"
        if cfg.resume == "latest" and done.exists():
            prev = json.loads(done.read_text())
            if int(prev.get("epochs", cfg.epochs)) == cfg.epochs:
                results[k] = prev
                continue  # finished; a larger --epochs trains it on from its last checkpoint
        results[k] = train_fold(cfg, k, pool, test_df, aus, text, d, device)
    summary = summarise(results, aus)
    summary["world_size"] = d.world
    summary["fold_scheme"] = scheme
    if d.main:
        atomic_write(out / "metrics.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
        table = summary_table(summary)
        (out / "metrics.txt").write_text(table + "\n")
        print(table, flush=True)
    return summary


def summarise(results: dict, aus) -> dict:
    folds = [results[k] for k in sorted(results)]
    summary = {"aus": list(aus), "folds": {str(r["fold"]): r for r in folds},
               "mean": mean_over_folds([r["test"] for r in folds])}
    tuned = [r["test_tuned"] for r in folds if "test_tuned" in r]
    if len(tuned) == len(folds) and tuned:
        summary["mean_tuned"] = mean_over_folds(tuned)
    return summary


def summary_table(summary: dict) -> str:
    cols = {f"fold{k}": r["test"] for k, r in summary["folds"].items()}
    if len(cols) > 1:
        cols["mean"] = summary["mean"]
    m = summary["mean"]
    cols["all-pos"] = {"f1": m["baseline_f1"], "mean_f1": m["mean_baseline_f1"]}
    if "mean_tuned" in summary:
        cols["tuned(val)"] = summary["mean_tuned"]
    return format_table(cols, summary["aus"],
                        "Test F1 ×100 at threshold 0.5 (all-pos = predict every AU present; "
                        "tuned = per-AU thresholds from validation, not the protocol number)")


# --------------------------------------------------------------------------- evaluate
def evaluate(run_dir: str | Path, fold: int, data: str | None = None, device: str = "auto",
             batch_size: int | None = None, num_workers: int | None = None,
             weights: str = "best") -> dict:
    """Recompute fold ``fold``'s test metrics from ``run_dir``'s weights (``best`` or ``last``);
    writes ``fold{k}/evaluate.json``."""
    import dataclasses

    import torch  # noqa: F401

    from hiva.config import load_config
    from hiva.data.dataset import AUDataset
    from hiva.data.transforms import eval_transform
    from hiva.model.config import ModelConfig
    from hiva.model.text import sample_text

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise HivaError(f"{run_dir} is not a hiva train run folder (no config.yaml); pass the "
                        "--out folder of `hiva train`")
    cfg = load_config(TrainConfig, run_dir / "config.yaml", data=data, resume=None,
                      eval_batch_size=batch_size, num_workers=num_workers, device=device)
    wfile = run_dir / f"fold{fold}" / f"{weights}.safetensors"
    if not wfile.is_file():
        raise HivaError(f"{wfile} does not exist; train fold {fold} first (hiva train --folds "
                        f"{fold}) or pick a trained fold")
    d = init_dist(device)
    dev = pick_device(device, d)
    df, scheme = load_data(cfg.data)
    meta = read_meta(wfile)
    mc = ModelConfig(**meta["model_config"])
    aus = mc.aus
    text = load_text(mc.text_mode, aus, cfg.text_bank, cfg.text_encoder)
    check_identity(meta, resolve_aus(dataclasses.replace(cfg, aus=aus), df), text.fingerprint,
                   text.encoder, wfile)
    _, made = make_folds(dataclasses.replace(cfg, folds=()), df, scheme)
    folds = {k: t for k, _, t in made}
    if fold not in folds:
        raise HivaError(f"fold {fold} is not in this run's folds {sorted(folds)}")
    model = build_model(dataclasses.replace(mc, pretrained=None), dev, cfg.channels_last)
    load_weights(model, wfile)
    mean, std = model.normalisation()
    ds = AUDataset(folds[fold], aus, eval_transform(mean, std, mc.input_size, cfg.resize_to))
    txt = (sample_text(text.bank, aus, cfg.eval_text_per_au, train=False)
           if text.bank is not None else None)
    pr = predict(model, ds, cfg, dev, txt, d, amp_dtype(cfg.amp, dev))
    res = {"fold": fold, "weights": str(wfile), "epoch": meta.get("epoch"),
           "test": au_metrics(pr.probs, pr.targets, pr.mask, aus)}
    if d.main:
        save_predictions(wfile.parent / f"evaluate_{weights}_predictions.parquet", folds[fold],
                         aus, pr)
        atomic_write(wfile.parent / "evaluate.json",
                     lambda p: p.write_text(json.dumps(res, indent=2)))
        t = res["test"]
        print(format_table({f"fold{fold}": t,
                            "all-pos": {"f1": t["baseline_f1"],
                                        "mean_f1": t["mean_baseline_f1"]}}, aus,
                           f"Test F1 ×100 of {wfile}"), flush=True)
    return res
