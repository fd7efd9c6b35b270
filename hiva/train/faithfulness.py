"""Are the activation maps faithful to the model? Two checks on a trained run's test frames:

- **Randomised weights** (after Adebayo et al., "Sanity checks for saliency maps", 2018): the
  same architecture with freshly initialised weights (backbone included) maps the same frames;
  per (frame, AU) the Spearman rank correlation of its map with the trained model's. Maps that
  stay alike show the architecture (or a region prior), not what was learned.
- **Deletion**: for frames where an AU is labelled present, grey out (the normalisation mean) the
  image patches under the k cells its map weights most, and, as the control, under k random
  cells; the mean drop in the AU's probability per k. A faithful map's top cells matter more.

``faithfulness(run_dir, ...)`` loads a run like ``hiva evaluate``, returns a JSON-ready dict and
writes ``fold{k}/faithfulness.json``. ``benchmarks/faithfulness.py`` runs it over a sweep.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from hiva.errors import HivaError
from hiva.model.factory import build_model
from hiva.runs import FAITHFULNESS
from hiva.runtime import seed_everything, write_text_atomic
from hiva.train.evaluate import load_fold


def rank_correlation(a, b) -> np.ndarray:
    """Spearman correlation along the last axis of two equally shaped arrays (ties averaged);
    NaN where either row is constant."""
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, np.float64), axis=-1)
    rb = rankdata(np.asarray(b, np.float64), axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / den, np.nan)


def delete_cells(images, cells, grid: tuple[int, int]):
    """Copies of ``images`` (B×3×S×S, normalised) with the patches under ``cells`` (B×k cell
    indices into the h×w grid) set to 0, the normalisation mean (grey)."""
    import torch

    b, _, hs, ws = images.shape
    h, w = grid
    keep = torch.ones(b, h * w, dtype=images.dtype, device=images.device)
    keep.scatter_(1, cells, 0.0)
    up = torch.nn.functional.interpolate(keep.view(b, 1, h, w), size=(hs, ws), mode="nearest")
    return images * up


@dataclasses.dataclass
class _Batch:
    images: object
    targets: np.ndarray
    mask: np.ndarray
    regions: object


def deletion_curve(model, batches, text, ks, seed: int = 0) -> dict:
    """Mean drop in each AU's probability when its top-k map cells, or k random cells, are
    deleted, over (frame, AU) pairs with the AU labelled present. ``batches``: ``_Batch``es."""
    import torch

    g = torch.Generator().manual_seed(seed)
    txt, tmask = text if text is not None else (None, None)
    top = {k: [] for k in ks}
    rnd = {k: [] for k in ks}
    for bt in batches:
        with torch.no_grad():
            out = model(bt.images, txt, tmask, regions=bt.regions)
        p0 = out.probs.float()
        maps = out.activation_maps.float()
        grid = out.map_size
        present = torch.from_numpy((bt.targets > 0.5) & bt.mask)
        p_cells = maps.shape[-1]
        order = maps.argsort(dim=-1, descending=True)  # B×N×P
        for i in range(maps.shape[1]):
            rows = present[:, i]
            if not rows.any():
                continue
            for k in ks:
                kk = min(k, p_cells)
                rand = torch.stack([torch.randperm(p_cells, generator=g)[:kk]
                                    for _ in range(len(bt.images))])
                for cells, acc in ((order[:, i, :kk], top[k]), (rand, rnd[k])):
                    with torch.no_grad():
                        o = model(delete_cells(bt.images, cells, grid), txt, tmask,
                                  regions=bt.regions)
                    acc.append((p0[rows, i] - o.probs.float()[rows, i]).numpy())
    return {"k": list(ks),
            "top_drop": [float(np.concatenate(top[k]).mean()) if top[k] else None for k in ks],
            "random_drop": [float(np.concatenate(rnd[k]).mean()) if rnd[k] else None
                            for k in ks],
            "pairs": int(sum(len(x) for x in top[ks[0]])) if top[ks[0]] else 0}


def faithfulness(run_dir, fold: int = 1, data: str | None = None, frames: int = 64,
                 ks=(1, 2, 4, 8), seed: int = 0, weights: str = "best") -> dict:
    """Both checks on up to ``frames`` test frames of fold ``fold`` of ``run_dir``."""
    import torch

    from hiva.data.dataset import collate_skip

    lf = load_fold(run_dir, fold, data, "cpu", weights)
    model, ds, txt, mc = lf.model.eval(), lf.dataset, lf.text, lf.model.cfg
    seed_everything(seed, False)
    rand = build_model(dataclasses.replace(mc, pretrained=None), lf.device, False).eval()
    if model.uses_bias:  # the prior's fallback is data, not weights: keep it
        rand.set_region_template(model.region_template)
    idx = np.unique(np.linspace(0, len(ds) - 1, min(frames, len(ds))).round().astype(int))
    items = [ds[int(i)] for i in idx]
    batches = []
    for s in range(0, len(items), 16):
        b = collate_skip(items[s:s + 16])
        if b is not None:
            batches.append(_Batch(b["image"], b["target"].numpy(), b["mask"].numpy(),
                                  b.get("regions")))
    if not batches:
        raise HivaError(f"no readable test image in fold {fold}")
    t, tm = txt if txt is not None else (None, None)
    corr = []
    with torch.no_grad():
        for bt in batches:
            a = model(bt.images, t, tm, regions=bt.regions).activation_maps.float().numpy()
            r = rand(bt.images, t, tm, regions=bt.regions).activation_maps.float().numpy()
            corr.append(rank_correlation(a, r))
    c = np.concatenate(corr)  # frames × AUs
    res = {"run": str(run_dir), "fold": fold, "weights": str(lf.weights), "frames": int(len(c)),
           "map_prior": mc.map_prior, "aus": list(mc.aus),
           "randomised_rank_correlation": {
               "mean": float(np.nanmean(c)),
               "per_au": [float(v) for v in np.nanmean(c, axis=0)]},
           "deletion": deletion_curve(model, batches, txt, tuple(ks), seed)}
    write_text_atomic(lf.weights.parent / FAITHFULNESS, json.dumps(res, indent=2))
    return res
