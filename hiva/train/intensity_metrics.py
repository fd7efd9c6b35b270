"""AU intensity metrics, as the DISFA intensity papers report them: per AU, ICC(3,1) between the
predicted and the labelled intensity and their mean absolute error (MAE), over the test frames
whose intensity is known; and their means over AUs. numpy only.

ICC(3,1) (Shrout & Fleiss 1979, case 3, single rater: two-way mixed, consistency) of n targets
rated by k raters, from the two-way ANOVA without replication:

    BMS = k Σ_i (r̄_i − x̄)² / (n − 1)             (between targets: row means r̄_i)
    EMS = (SS_total − SS_rows − SS_cols) / ((n − 1)(k − 1))
    ICC(3,1) = (BMS − EMS) / (BMS + (k − 1) EMS)

Here the raters are the labels and the model (k = 2), where it equals 2·cov(y, ŷ) / (var y +
var ŷ): a function of the sums n, Σy, Σŷ, Σy², Σŷ², Σyŷ, so it can be pooled over frames (and
weighted by a bootstrap's subject draws) from per-subject sums (``intensity_sums``). It is
undefined (NaN) with fewer than two frames or when neither rating varies (BMS + EMS = 0), and
then left out of the mean over AUs, as undefined F1 is.
"""

from __future__ import annotations

import warnings

import numpy as np

# Per-frame sums kept for each (subject, AU): frames, Σy, Σŷ, Σy², Σŷ², Σyŷ, Σ|ŷ − y|.
SUMS = ("frames", "y", "p", "yy", "pp", "yp", "abs")


def icc_3_1(ratings) -> float:
    """ICC(3,1) of an n × k table (targets × raters) from its ANOVA (the module's formula);
    NaN when it is undefined (n < 2, k < 2, or no variance at all)."""
    x = np.asarray(ratings, dtype=np.float64)
    n, k = x.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * ((x.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    den = bms + (k - 1) * ems
    return float((bms - ems) / den) if den > 1e-12 * max(1.0, abs(bms)) else float("nan")


def intensity_sums(pred, target) -> np.ndarray:
    """[..., len(SUMS)] sums over the frames (axis 0) of ``pred`` and ``target`` (frames × AUs)
    where the target is known (not NaN)."""
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    known = np.isfinite(y) & np.isfinite(p)
    p, y = np.where(known, p, 0.0), np.where(known, y, 0.0)
    return np.stack([known.sum(0), y.sum(0), p.sum(0), (y * y).sum(0), (p * p).sum(0),
                     (y * p).sum(0), np.abs(p - y).sum(0)], axis=-1).astype(np.float64)


def from_sums(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ICC(3,1), MAE) of pooled ``SUMS`` ``s`` ([..., 7]); NaN where undefined (ICC: under two
    frames or no variance; MAE: no frame)."""
    n, sy, sp, syy, spp, syp, sab = np.moveaxis(np.asarray(s, dtype=np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vy = syy - sy * sy / n
        vp = spp - sp * sp / n
        cov = syp - sy * sp / n
        den = vy + vp
        scale = np.maximum(1.0, np.abs(syy) + np.abs(spp))
        icc = np.where((n >= 2) & (den > 1e-12 * scale), 2 * cov / den, np.nan)
        mae = np.where(n > 0, sab / n, np.nan)
    return icc, mae


def _mean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def intensity_metrics(pred, target, aus) -> dict:
    """``{"aus", "icc", "mae", "support", "mean_icc", "mean_mae", "undefined_icc"}`` of
    predicted intensities ``pred`` against ``target`` (frames × AUs, 0-5, NaN = unknown).
    ``support``: frames with a known intensity per AU; an AU without any has NaN ICC and MAE,
    as has the ICC of one whose ratings do not vary: named in ``undefined_icc``, left out of
    the means."""
    icc, mae = from_sums(intensity_sums(pred, target))
    support = np.isfinite(np.asarray(target, dtype=np.float64)).sum(0)
    return {
        "aus": [int(a) for a in aus],
        "icc": [round(float(v), 6) for v in icc],
        "mae": [round(float(v), 6) for v in mae],
        "support": support.astype(int).tolist(),
        "mean_icc": _mean(icc),
        "mean_mae": _mean(mae),
        "undefined_icc": [int(a) for a, v in zip(aus, icc) if v != v],
    }


def intensity_over_folds(per_fold: list[dict]) -> dict:
    """The mean over folds of each AU's ICC and MAE and of their means (NaN left out)."""
    out = {"aus": per_fold[0]["aus"], "folds": len(per_fold)}
    with warnings.catch_warnings():  # an AU undefined in every fold stays NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in ("icc", "mae"):
            out[k] = np.nanmean(np.array([f[k] for f in per_fold], dtype=np.float64), 0).tolist()
        for k in ("mean_icc", "mean_mae"):
            out[k] = float(np.nanmean(np.array([f[k] for f in per_fold], dtype=np.float64)))
    return out


def intensity_table(columns: dict[str, dict], aus) -> str:
    """Plain text: one row per AU, per column (name → ``intensity_metrics``-like dict) its
    ICC(3,1) and MAE, then the means; ``n/a`` where undefined."""
    names = list(columns)
    w = max(12, *(len(n) + 2 for n in names))
    lines = ["Test intensity: ICC(3,1) / MAE (0-5 scale; frames with a known intensity)",
             "AU".ljust(6) + "".join(n.rjust(w) for n in names)]

    def num(v) -> str:
        return "n/a" if v is None or v != v else f"{v:.2f}"

    def cell(c, i=None) -> str:
        icc = c["mean_icc"] if i is None else c["icc"][i]
        mae = c["mean_mae"] if i is None else c["mae"][i]
        return f"{num(icc)} / {num(mae)}".rjust(w)

    for i, a in enumerate(aus):
        lines.append(f"AU{int(a):02d}".ljust(6) + "".join(cell(columns[n], i) for n in names))
    lines.append("mean".ljust(6) + "".join(cell(columns[n]) for n in names))
    return "\n".join(lines)
