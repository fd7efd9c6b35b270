"""The steps of training and evaluation, each taking the device explicitly (tests run them with
the model on PyTorch's meta device, where any tensor left on the CPU raises), and what feeds them:
parameter groups, the learning-rate schedule, loaders, each rank's share of an epoch, and
``predict`` gathering per-frame outputs from every rank.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from hiva.model.archs import get_arch
from hiva.regions import localisation
from hiva.runtime import Dist, all_sum
from hiva.train.config import TrainConfig

# The loss terms a training step may return (``HiVALoss``, ME-GraphAU's loss), summed per epoch
# and logged as ``train_<term>`` (``total`` as ``train_loss``); a term a model lacks counts 0.
LOSS_TERMS = ("total", "cls", "align", "map_kl", "edge", "intensity")
# Each epoch's random streams, one per purpose: seed × a + epoch × b + rank. Distinct primes per
# stream keep the loader's and the text draws' streams apart and (seed, epoch) pairs from colliding;
# they are fixed, so a rerun or a resumed run draws exactly what an uninterrupted one drew.
_STREAMS = {"loader": (7919, 131), "text": (1_000_003, 1009)}


def stream_seed(stream: str, seed: int, epoch: int, rank: int) -> int:
    """The seed of one random stream (``loader``: the DataLoader's generator, which seeds its
    workers; ``text``: the descriptions drawn per AU) of epoch ``epoch`` on rank ``rank``."""
    a, b = _STREAMS[stream]
    return seed * a + epoch * b + rank


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


def make_loader(ds, indices, batch_size, cfg: TrainConfig, device, seed: int, drop_last: bool):
    """Batches of ``ds`` at ``indices``: a DataLoader over images, or the batches of an
    in-memory feature set (``hiva.train.feature_set.FeatureSet``: heads-only, nothing to decode,
    no workers)."""
    if hasattr(ds, "batches"):
        return ds.batches(indices, batch_size, drop_last)
    import torch
    from torch.utils.data import DataLoader

    from hiva.data.dataset import collate_skip

    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds, batch_size=batch_size, sampler=list(indices), num_workers=cfg.num_workers,
        collate_fn=collate_skip, pin_memory=device.type == "cuda", drop_last=drop_last,
        generator=g, persistent_workers=False,
    )


def epoch_indices(n: int, epoch: int, seed: int, d: Dist, length: int | None = None) -> list[int]:
    """This rank's shuffled share of 0..n-1 for ``epoch``; the same on every resume.

    Like DistributedSampler: one permutation from (seed, epoch), padded to a multiple of the world
    size, then rank::world. ``length`` > n (``schedule: steps`` on a labelled share) chains further
    permutations until the epoch holds ``length`` samples."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n).tolist()
    while length is not None and len(perm) < length:
        perm += rng.permutation(n).tolist()
    if length is not None:
        perm = perm[:max(length, n)]
    if d.world > 1:
        pad = (-len(perm)) % d.world
        perm += perm[:pad]
        perm = perm[d.rank::d.world]
    return perm


# The training and evaluation steps take the device explicitly: tests run them with the model on
# PyTorch's meta device, where any tensor left on the CPU raises (no GPU needed to find one).
def loss_terms(mc) -> tuple[str, ...]:
    """The loss terms logged per epoch beyond total, cls, align and map_kl: the architecture's
    own (``edge``) and, with the intensity head, ``intensity``."""
    return get_arch(mc.arch).extra_loss_terms + (("intensity",) if mc.has_intensity else ())


def intensity_of(batch: dict, device) -> dict:
    """The loss's ``intensity`` keyword for a batch that carries intensity targets (a model
    with the intensity head), on ``device``; {} for any other."""
    if "intensity" not in batch:
        return {}
    return {"intensity": batch["intensity"].to(device, non_blocking=True)}


def batch_to(batch: dict, device, channels_last: bool):
    """(images, targets, known-label mask) of a collated batch, on ``device``; a heads-only
    batch gives the backbone's feature maps instead of images, read through one cast to float32
    from the cache's dtype whether they were cached or just computed."""
    import torch

    if "features" in batch:
        x = batch["features"].to(device, non_blocking=True).float()
    else:
        x = batch["image"].to(device, non_blocking=True)
    if channels_last and "features" not in batch:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x, batch["target"].to(device, non_blocking=True),
            batch["mask"].to(device, non_blocking=True))


def forward(net, x, text, amp, regions=None, prior_regions=None, features: bool = False):
    """The model's output for images ``x`` and ``text`` = (N×M×D, N×M mask) or None;
    ``regions``: the batch's AU region discs from its own landmarks (B×N×C×3, on any device;
    they score the maps) or None; ``prior_regions``: the same from AU-independent landmarks (a
    training frame's neutral face; the region prior) or None. ``features``: ``x`` holds the
    backbone's feature maps (B×C×h×w, heads-only), not images: the backbone is skipped."""
    import torch

    txt, tmask = text if text is not None else (None, None)
    ctx = torch.autocast(x.device.type, dtype=amp) if amp is not None else nullcontext()
    kw = {k: v for k, v in (("regions", regions), ("prior_regions", prior_regions))
          if v is not None}
    if features:
        x, kw["features"] = None, x
    with ctx:
        return net(x, txt, tmask, **kw)


def train_micro_step(net, batch: dict, text, loss_fn, scaler, device, amp, *,
                     channels_last: bool, grad_accum: int = 1, sync=None) -> dict:
    """Forward, loss and backward of one micro-batch; returns the detached loss parts."""
    x, y, m = batch_to(batch, device, channels_last)
    with sync if sync is not None else nullcontext():
        out = forward(net, x, text, amp, batch.get("regions"), batch.get("prior_regions"),
                      features="features" in batch)
        loss, parts = loss_fn(out, y, m, **intensity_of(batch, device))
        scaler.scale(loss / grad_accum).backward()
    return parts


# Optimizer steps between two reads of the loss by the host (steps file, TensorBoard, progress
# bar); an epoch's end reads too. In between, no training step waits for the device.
FLUSH_EVERY = 50


class LossTally:
    """An epoch's loss kept on the device, so that no training step waits for it: the sum of each
    of ``LOSS_TERMS`` over the micro-batches (float64, as the host summed them) and the loss of
    each optimizer step not yet written. ``flush`` reads both in one copy, every ``FLUSH_EVERY``
    steps and when the trainer asks (the epoch's end); ``write`` (``RunLogs.steps``) takes the
    steps' rows, ``bar`` (tqdm) shows the epoch's mean loss so far."""

    def __init__(self, device, d: Dist, write=None, bar=None):
        import torch

        self.d, self.write, self.bar = d, write, bar
        self.sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=device)
        self._zero = torch.zeros((), dtype=torch.float64, device=device)
        self.seen = 0  # micro-batches added
        self._steps: list[tuple[int, int, float]] = []
        self._losses: list = []

    def add(self, parts: dict) -> None:
        """One micro-batch's detached loss parts; a term the model lacks counts 0."""
        import torch

        self.sums += torch.stack([parts.get(t, self._zero) for t in LOSS_TERMS])
        self.seen += 1

    def step(self, step: int, epoch: int, lr: float, loss) -> None:
        """An optimizer step's row of the steps file; ``loss``: this rank's total of the step's
        last micro-batch, a device scalar read at the next ``flush``."""
        self._steps.append((step, epoch, lr))
        self._losses.append(loss)
        if len(self._steps) >= FLUSH_EVERY:
            self.flush()

    def flush(self, close: bool = False) -> list[float]:
        """Write the waiting steps' rows (``loss``: the mean over ranks, rounded to 6 places);
        returns this rank's ``LOSS_TERMS`` sums so far. The one read by the host, and a
        collective under DDP: every rank flushes at the same steps. ``close``: the bar too."""
        import torch

        n = len(self._losses)
        vals = (torch.cat([torch.stack(self._losses).double(), self.sums]) if n
                else self.sums).tolist()
        losses = all_sum(vals[:n], self.d) if n else []
        rows = [{"step": s, "epoch": e, "loss": round(v / self.d.world, 6), "lr": lr}
                for (s, e, lr), v in zip(self._steps, losses)]
        self._steps, self._losses = [], []
        if rows and self.write is not None:
            self.write(rows)
        if self.bar is not None:
            if self.seen:  # LOSS_TERMS[0] is the total
                self.bar.set_postfix(loss=f"{vals[n] / self.seen:.4f}")
            if close:
                self.bar.close()
        return vals[n:]


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
        out = forward(model, x, text, amp, batch.get("regions"), features="features" in batch)
        loss = (loss_fn(out, y, m, **intensity_of(batch, device))[0] if loss_fn is not None
                else None)
    return out, loss


@dataclass
class Predictions:
    """Per-frame outputs over a dataset, in dataset order: ``index`` (row of the dataset; frames
    whose image could not be read are absent), ``probs``/``targets``/``mask`` (frames × AUs),
    ``text_entropy`` (frames × AUs, nats) of the DDCA vision←text attention over each AU's
    descriptions (None for a model without DDCA); ``localisation`` (None unless the frames came
    with landmarks): frames × AUs arrays ``energy``, ``pointing``, ``energy_chance``,
    ``pointing_chance`` of each AU's activation map against its region
    (``hiva.regions.localisation``; NaN where the AU has no region)."""

    index: np.ndarray
    probs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    loss: float
    text_entropy: np.ndarray | None = None
    localisation: dict[str, np.ndarray] | None = None
    intensity: np.ndarray | None = None
    intensity_targets: np.ndarray | None = None


LOC_KEYS = ("energy", "pointing", "energy_chance", "pointing_chance")


def predict(model, ds, cfg: TrainConfig, device, text, d: Dist, amp=None,
            loss_fn=None) -> Predictions:
    """Predictions over all of ``ds``, gathered from every rank in dataset order (each rank
    scores rank::world, no padding, so no frame counts twice)."""
    from hiva.model.language import attention_entropy

    idx = list(range(d.rank, len(ds), d.world))
    bs = cfg.eval_batch_size or cfg.batch_size
    loader = make_loader(ds, idx, bs, cfg, device, cfg.seed, drop_last=False)
    model.eval()
    rows, probs, tgts, masks, ents, inten, inten_y = [], [], [], [], [], [], []
    locs: list[list[np.ndarray]] = [[] for _ in LOC_KEYS]
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
        if out.intensity is not None and "intensity" in batch:
            inten.append(out.intensity.float().cpu().numpy())
            inten_y.append(batch["intensity"].numpy())
        if out.text_attention is not None:
            ents.append(attention_entropy(out.text_attention).cpu().numpy())
        if out.region_frac is not None:
            for acc, v in zip(locs, localisation(out.activation_maps, out.region_frac)):
                acc.append(v.cpu().numpy())
    n_aus = len(ds.aus)

    def cat(xs, dtype=np.float32):
        return np.concatenate(xs) if xs else np.zeros((0, n_aus), dtype)

    local = (
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        cat(probs), cat(tgts), cat(masks, bool), cat(ents), cat(inten), cat(inten_y),
        *(cat(a) for a in locs),
    )
    if d.world > 1:
        import torch.distributed as dist

        parts = [None] * d.world
        dist.all_gather_object(parts, local)
        local = tuple(np.concatenate([p[i] for p in parts]) for i in range(len(local)))
        loss_sum, loss_n = all_sum([loss_sum, float(loss_n)], d)
    n = len(local[0])
    order = np.argsort(local[0], kind="stable")
    i, p, y, m, e, r, ry, *loc = (a[order] if len(a) == n else a for a in local)
    full = n > 0 and all(len(a) == n for a in loc)
    has_r = n > 0 and len(r) == n
    return Predictions(i, p, y, m, loss_sum / loss_n if loss_n else float("nan"),
                       e if len(e) == n and n else None,
                       dict(zip(LOC_KEYS, loc)) if full else None,
                       r if has_r else None, ry if has_r else None)
