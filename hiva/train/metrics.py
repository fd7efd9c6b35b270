"""AU detection metrics, the protocol's way: per-AU F1 at a threshold with TP/FP/FN summed over
the whole test fold (not averaged over batches), their mean, accuracy, per-AU ROC AUC (sklearn),
the trivial all-positive baseline, and per-AU threshold tuning on validation.

Inputs are numpy arrays: ``probs`` B×N in [0, 1], ``targets`` B×N 0/1, ``mask`` B×N bool
(False = label unknown, left out of every count). Imports numpy and sklearn only.
"""

from __future__ import annotations

import warnings

import numpy as np


def _counts(pred: np.ndarray, y: np.ndarray, m: np.ndarray):
    tp = ((pred == 1) & (y == 1) & m).sum(0)
    fp = ((pred == 1) & (y == 0) & m).sum(0)
    fn = ((pred == 0) & (y == 1) & m).sum(0)
    tn = ((pred == 0) & (y == 0) & m).sum(0)
    return tp, fp, fn, tn


def f1_from_counts(tp, fp, fn) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN); 0 where the denominator is 0 (no positives, none predicted)."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def au_metrics(probs, targets, mask=None, aus=None, thresholds=0.5) -> dict:
    """Per-AU and mean F1/accuracy/AUC and the all-positive baseline F1.

    Returns ``{"aus", "f1", "accuracy", "auc", "baseline_f1", "support", "positives",
    "mean_f1", "mean_accuracy", "mean_auc", "mean_baseline_f1", "n", "thresholds",
    "undefined_f1"}``. F1 (and the baseline's) is NaN for an AU with no known positive label:
    it is undefined there, so it is left out of the means and named in ``undefined_f1``.
    Accuracy is NaN for an AU with no known label at all; AUC is NaN for an AU whose known labels
    are all one class. Every mean leaves the NaNs out.
    """
    from sklearn.metrics import roc_auc_score

    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets).astype(np.int64)
    m = np.ones_like(y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n_aus = p.shape[1]
    th = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_aus,))
    pred = (p >= th).astype(np.int64)
    tp, fp, fn, tn = _counts(pred, y, m)
    support = m.sum(0)
    pos = ((y == 1) & m).sum(0)
    undefined = pos == 0
    f1 = np.where(undefined, np.nan, f1_from_counts(tp, fp, fn))
    acc = np.divide(tp + tn, support, out=np.full(n_aus, np.nan), where=support > 0)
    # All-positive baseline: TP = positives, FP = negatives, FN = 0.
    base = np.where(undefined, np.nan, f1_from_counts(pos, support - pos, np.zeros(n_aus)))
    auc = np.full(n_aus, np.nan)
    for i in range(n_aus):
        yi = y[m[:, i], i]
        if 0 < yi.sum() < len(yi):
            auc[i] = roc_auc_score(yi, p[m[:, i], i])
    aus = list(aus) if aus is not None else list(range(1, n_aus + 1))

    def mean(x):
        x = np.asarray(x, dtype=np.float64)
        return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")

    return {
        "aus": [int(a) for a in aus],
        "f1": f1.tolist(),
        "accuracy": acc.tolist(),
        "auc": auc.tolist(),
        "baseline_f1": base.tolist(),
        "support": support.astype(int).tolist(),
        "positives": pos.astype(int).tolist(),
        "thresholds": th.tolist(),
        "mean_f1": mean(f1),
        "mean_accuracy": mean(acc),
        "mean_auc": mean(auc),
        "mean_baseline_f1": mean(base),
        "n": int(len(p)),
        "undefined_f1": [int(a) for a, u in zip(aus, undefined) if u],
    }


def tune_thresholds(probs, targets, mask=None, grid=None) -> np.ndarray:
    """Per-AU threshold maximising validation F1 over ``grid`` (default 0.05..0.95); 0.5 kept
    for an AU without known positives. Report the result apart from the protocol's 0.5."""
    grid = np.linspace(0.05, 0.95, 19) if grid is None else np.asarray(grid)
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets).astype(np.int64)
    m = np.ones_like(y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    best = np.full(p.shape[1], 0.5)
    for i in range(p.shape[1]):
        yi, pi = y[m[:, i], i], p[m[:, i], i]
        if yi.sum() == 0:
            continue
        scores = []
        for t in grid:
            pr = pi >= t
            tp, fp = (pr & (yi == 1)).sum(), (pr & (yi == 0)).sum()
            fn = (~pr & (yi == 1)).sum()
            scores.append(f1_from_counts([tp], [fp], [fn])[0])
        best[i] = float(grid[int(np.argmax(scores))])
    return best


def mean_over_folds(per_fold: list[dict]) -> dict:
    """Average the per-AU lists and the means of several folds' ``au_metrics`` results."""
    if not per_fold:
        return {}

    out = {"aus": per_fold[0]["aus"], "folds": len(per_fold)}
    with warnings.catch_warnings():  # an AU with no AUC in any fold stays NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in ("f1", "accuracy", "auc", "baseline_f1"):
            out[k] = np.nanmean(np.array([f[k] for f in per_fold], dtype=np.float64), 0).tolist()
        for k in ("mean_f1", "mean_accuracy", "mean_auc", "mean_baseline_f1"):
            out[k] = float(np.nanmean([f[k] for f in per_fold]))
    out["undefined_f1"] = {str(i + 1): f["undefined_f1"] for i, f in enumerate(per_fold)
                           if f.get("undefined_f1")}
    return out


def undefined_note(columns: dict[str, dict]) -> str:
    """One line naming the AUs whose F1 is undefined (no positive label) in each column."""
    parts = []
    for name, c in columns.items():
        und = c.get("undefined_f1")
        if isinstance(und, list) and und:
            parts.append(f"{name}: " + ", ".join(f"AU{int(a):02d}" for a in und))
    if not parts:
        return ""
    return ("n/a = F1 undefined (no positive test label), left out of the mean — "
            + "; ".join(parts))


def format_table(columns: dict[str, dict], aus, title: str = "") -> str:
    """A plain-text table: one row per AU (F1 ×100), then the means; one column per entry of
    ``columns`` (name → metrics dict with ``f1`` and ``mean_f1``)."""
    names = list(columns)
    w = max(8, *(len(n) for n in names)) + 2
    lines = [title] if title else []
    lines.append("AU".ljust(6) + "".join(n.rjust(w) for n in names))
    for i, a in enumerate(aus):
        row = f"AU{int(a):02d}".ljust(6)
        for n in names:
            f = columns[n].get("f1")
            v = f[i] if f is not None and i < len(f) else None
            row += ("-" if v is None else "n/a" if v != v else f"{100 * v:.1f}").rjust(w)
        lines.append(row)
    for key, label in (("mean_f1", "F1"), ("mean_auc", "AUC"), ("mean_accuracy", "Acc")):
        if any(key in columns[n] for n in names):
            row = label.ljust(6)
            for n in names:
                v = columns[n].get(key)
                row += (f"{100 * v:.1f}" if v is not None and v == v else "-").rjust(w)
            lines.append(row)
    note = undefined_note(columns)
    return "\n".join(lines + ([note] if note else []))


def localisation_scores(loc: dict, targets, mask, aus) -> dict:
    """Per AU, over the frames where it is labelled present and has a region: the mean energy in
    the region and pointing-game hit rate of its activation map, each with its chance level
    (``hiva.regions.localisation``), and the number of frames; plus their means over the AUs
    that have a score. ``loc``: ``Predictions.localisation``."""
    y = np.asarray(targets) > 0.5
    m = np.asarray(mask, dtype=bool)
    out: dict = {"aus": list(aus)}
    keys = ("energy", "pointing", "energy_chance", "pointing_chance")
    for k in keys:
        out[k] = []
    out["frames"] = []
    for i in range(len(aus)):
        sel = y[:, i] & m[:, i] & np.isfinite(np.asarray(loc["energy"])[:, i])
        out["frames"].append(int(sel.sum()))
        for k in keys:
            v = np.asarray(loc[k], dtype=np.float64)[sel, i]
            out[k].append(round(float(v.mean()), 4) if len(v) else None)
    for k in keys:
        vals = [v for v in out[k] if v is not None]
        out[f"mean_{k}"] = round(float(np.mean(vals)), 4) if vals else None
    return out
