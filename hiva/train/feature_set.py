"""Heads-only training data (``model.freeze_backbone``): every frame of a split as in-memory
feature maps of the frozen backbone, one per deterministic view, read through the cache of
``hiva.train.feature_cache`` (computed there once per image and view).

Views (``view_specs``): 0 = the eval transform (pad to a square, resize, centre crop), exactly
what validation, test and ``hiva predict`` see; 1 = its horizontal flip (when ``flip``); the
further ones (TrainConfig ``feature_views`` > 2) = crops of the train transform without colour
jitter (and a flip when ``flip``), seeded by the view id and the image's bytes, so a view of an
image is the same in every run and process. A training item draws its view per epoch from
(seed, epoch, index), as ``AUDataset`` draws its augmentation; evaluation sets use view 0. The
landmarks go through the same view transform (alone: no image is decoded for them) and stay in
memory beside the features.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from hiva.errors import HivaError
from hiva.regions import au_discs
from hiva.runtime import Dist, barrier, stable_hash
from hiva.train.feature_cache import (
    FeatureCache,
    backbone_fingerprint,
    feature_key,
    read_image_info,
)


def view_specs(n: int, size: int, resize: int, mean, std, flip: bool = True) -> list[dict]:
    """The first ``n`` views, each a JSON-able spec (what the cache key hashes)."""
    base = {"size": int(size), "resize": int(resize), "mean": [float(m) for m in mean],
            "std": [float(s) for s in std]}
    out = [dict(base, view=0, kind="eval")]
    for v in range(1, n):
        if v == 1 and flip:
            out.append(dict(base, view=1, kind="eval-flip"))
        else:
            out.append(dict(base, view=v, kind="crop", flip=bool(flip)))
    return out


@functools.lru_cache(maxsize=32)
def _build(spec_json: str):
    from torchvision.transforms import v2

    from hiva.data.transforms import eval_transform, train_transform

    s = json.loads(spec_json)
    args = (tuple(s["mean"]), tuple(s["std"]))
    if s["kind"] == "crop":
        return train_transform(*args, size=s["size"], resize=s["resize"], jitter=0.0,
                               flip=s["flip"])
    tf = eval_transform(*args, size=s["size"], resize=s["resize"])
    return v2.Compose([tf, v2.RandomHorizontalFlip(p=1.0)]) if s["kind"] == "eval-flip" else tf


class ViewTransform:
    """One view of one image: ``ViewTransform(spec, digest)(image, *keypoints)``, or keypoints
    alone. Random steps (a crop's offset and flip; the flip view's p=1 flip draws too) draw
    from torch's CPU generator seeded by (view, image digest) inside ``fork_rng``: the caller's
    RNG is left as it was, so a cold cache and a warm one give the same dropout streams.
    Picklable, for DataLoader workers."""

    def __init__(self, spec: dict, digest: str):
        self.spec_json = json.dumps(spec, sort_keys=True)
        self.seed = stable_hash(f"hiva-view:{spec['view']}:{digest}") >> 1

    def __call__(self, *inputs):
        import torch

        tf = _build(self.spec_json)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed)
            return tf(*inputs)


class FeatureSet:
    """A split's frames as feature maps ``feats`` (V×n×C×h×w, the cache's dtype) with their
    targets, masks, intensities (``intensity``: n×N, NaN = unknown; None without the intensity
    head) and (with landmarks) region discs per view (V×n×N×C×3). Frames whose image
    could not be read are skipped (``ok`` False), as ``AUDataset`` skips them.
    ``batches(indices, batch_size, drop_last)`` yields what ``collate_skip`` yields for
    images, with ``features`` in place of ``image`` (None for a batch of bad frames only)."""

    def __init__(self, feats, ok, target, mask, aus, regions=None, prior_regions=None,
                 seed: int | None = None, bad_paths: list[str] | None = None,
                 intensity: np.ndarray | None = None):
        self.feats, self.ok = feats, np.asarray(ok, dtype=bool)
        self.intensity = intensity
        self.target, self.mask, self.aus = target, mask, tuple(aus)
        self.regions, self.prior_regions = regions, prior_regions
        self.seed, self.epoch = seed, 0
        self.bad_paths = bad_paths or []
        self.bad = len(self.bad_paths)

    def __len__(self) -> int:
        return len(self.ok)

    @property
    def num_views(self) -> int:
        return int(self.feats.shape[0])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def view_of(self, i: int) -> int:
        """Item ``i``'s view this epoch: from (seed, epoch, index); 0 without a seed."""
        if self.seed is None or self.num_views == 1:
            return 0
        return stable_hash(f"hiva-view:{self.seed}:{self.epoch}:{int(i)}") % self.num_views

    def batches(self, indices, batch_size: int, drop_last: bool):
        import torch

        indices = np.asarray(list(indices), dtype=np.int64)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            good = chunk[self.ok[chunk]]
            if len(good) == 0:
                yield None
                continue
            v = torch.as_tensor([self.view_of(i) for i in good])
            g = torch.from_numpy(good)
            batch = {"features": self.feats[v, g], "target": torch.from_numpy(self.target[good]),
                     "mask": torch.from_numpy(self.mask[good]), "index": g,
                     "skipped": len(chunk) - len(good)}
            if self.intensity is not None:
                batch["intensity"] = torch.from_numpy(self.intensity[good])
            for key, r in (("regions", self.regions), ("prior_regions", self.prior_regions)):
                if r is not None:
                    batch[key] = r[v, g]
            yield batch


def view_regions(ds, infos: list, views: list[list[ViewTransform]], n_views: int):
    """(regions, prior_regions): V×n×N×C×3 float32 tensors of the region discs of ``ds`` (an
    ``AUDataset``) from its landmarks and neutral landmarks (None where it has none), each
    view's transform applied to the landmarks alone: ``infos[i]`` = (digest, (w, h)) of item
    i's image or None (unread: NaN), ``views[i]`` = its ``ViewTransform`` per view."""
    import torch

    if ds.landmarks is None:
        return None, None
    tables = (getattr(ds, "region_table", None), getattr(ds, "prior_table", None))
    shapes = [au_discs(np.full((1, 2), np.nan), ds.scheme, ds.aus, t).shape for t in tables]
    c = max(s[1] for s in shapes)  # the two tables may differ in discs per AU: pad with NaN
    out = np.full((2, n_views, len(ds), len(ds.aus), c, 3), np.nan, np.float32)
    raws = [ds.landmarks] + ([ds.neutral] if ds.neutral is not None else [])
    for i, info in enumerate(infos):
        if info is None:
            continue
        kps = [ds.keypoints(raw[i], info[1]) for raw in raws]
        for v, tf in enumerate(views[i]):
            got = tf(*kps)
            got = got if isinstance(got, tuple) else (got,)
            for j, pts in enumerate(got):
                discs = au_discs(pts.numpy(), ds.scheme, ds.aus, tables[j])
                out[j, v, i, :, :discs.shape[1]] = discs
    regions = torch.from_numpy(out[0])
    return regions, (torch.from_numpy(out[1]) if ds.neutral is not None else None)


def feature_sets(model, cfg, datasets: list, n_views: list[int], device, d: Dist,
                 desc: str = "features") -> list:
    """``datasets`` (``AUDataset``s or None; one object may appear twice) as ``FeatureSet``s
    of ``n_views`` views each, the features read from the cache or computed there (in batches,
    on ``device``, ranks sharing the misses). ``model``: the AU network (its frozen backbone,
    normalisation and input size); ``cfg``: the TrainConfig (``feature_cache``,
    ``feature_dtype``, ``resize``, ``flip``, batch sizes, workers, progress)."""
    import torch

    cache = FeatureCache(cfg.feature_cache, cfg.feature_dtype)
    mean, std = model.normalisation()
    specs = view_specs(max(n_views), model.cfg.input_size, cfg.resize_to, mean, std, cfg.flip)
    fp = backbone_fingerprint(model.backbone)
    uniq = {id(ds): (ds, v) for ds, v in zip(datasets, n_views) if ds is not None}
    infos = {p: None for ds, _ in uniq.values() for p in ds.paths}
    for p in infos:
        infos[p] = read_image_info(p)
    jobs, plan = {}, {}
    for key_ds, (ds, nv) in uniq.items():
        rows = []
        for p in ds.paths:
            info = infos[p]
            tfs = [ViewTransform(s, info[0]) for s in specs[:nv]] if info else []
            keys = [feature_key(info[0], s, fp, cache.dtype) for s in specs[:nv]] if info else []
            for k, tf in zip(keys, tfs):
                jobs[k] = (p, info[0], tf)
            rows.append((keys, tfs))
        plan[key_ds] = rows
    got = _fill(cache, model.backbone, jobs, cfg, device, d, desc)
    if not got:
        raise HivaError(f"no image of the {len(infos)} could be read for heads-only training "
                        f"(e.g. {next(iter(infos), '?')}); check the manifest's paths")
    shape = next(iter(got.values())).shape
    built = {}
    for key_ds, (ds, nv) in uniq.items():
        feats = torch.zeros((nv, len(ds), *shape), dtype=getattr(torch, cache.dtype))
        ok = np.zeros(len(ds), dtype=bool)
        for i, (keys, _) in enumerate(plan[key_ds]):
            if keys and all(k in got for k in keys):
                ok[i] = True
                for v, k in enumerate(keys):
                    feats[v, i] = got[k]
        infos_ds = [infos[p] if ok[i] else None for i, p in enumerate(ds.paths)]
        regions, prior = view_regions(ds, infos_ds, [tfs for _, tfs in plan[key_ds]], nv)
        bad = [p for i, p in enumerate(ds.paths) if not ok[i]]
        built[key_ds] = FeatureSet(feats, ok, ds.target, ds.mask, ds.aus, regions, prior,
                                   seed=ds.seed if nv > 1 else None, bad_paths=bad,
                                   intensity=getattr(ds, "intensity", None))
    if d.main:
        n_bad = len({p for fs in built.values() for p in fs.bad_paths})
        print(f"{desc}: {len(jobs)} (image, view) maps, {cache.hits} cached, {cache.misses} "
              f"computed, {n_bad} unreadable image(s) skipped; cache {cache.root}", flush=True)
    return [None if ds is None else built[id(ds)] for ds in datasets]


def _fill(cache: FeatureCache, backbone, jobs: dict, cfg, device, d: Dist, desc: str) -> dict:
    """{key: tensor} of every job: cached ones read, the rest computed, each rank computing
    its share of the misses first (a contiguous run: an image's views stay together, so it is
    decoded once) and then reading (or, if a rank failed, computing) the rest."""
    got, missing = cache.lookup(jobs)
    bs = cfg.eval_batch_size or cfg.batch_size
    show = cfg.progress and d.main
    n = len(missing)
    mine = missing[n * d.rank // d.world:n * (d.rank + 1) // d.world]
    got.update(cache.compute(backbone, {k: jobs[k] for k in mine}, device, bs,
                             cfg.num_workers, show, desc))
    if d.world > 1:
        barrier(d)
        rest = [k for k in missing if k not in got]
        more, still = cache.lookup(rest)
        got.update(more)
        got.update(cache.compute(backbone, {k: jobs[k] for k in still}, device, bs,
                                 cfg.num_workers, False, desc))
    return got
