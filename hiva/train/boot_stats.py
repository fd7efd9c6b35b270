"""Small numeric helpers of ``hiva report``'s bootstrap (hiva.train.bootstrap): NaN-skipping means
summed term by term, percentile intervals, two-sided bootstrap p-values, Holm's step-down
adjustment, and NaN → None for JSON. numpy only."""

from __future__ import annotations

import numpy as np

CI_LEVEL = 0.95


def nanmean_terms(terms: list[np.ndarray]) -> np.ndarray:
    """Elementwise mean of ``terms``, NaNs left out (NaN where every term is NaN). Summed term
    by term in order, so equal inputs give bit-equal outputs whatever their memory layout."""
    total = np.zeros(np.shape(terms[0]))
    n = np.zeros_like(total)
    for t in terms:
        ok = ~np.isnan(t)
        total += np.where(ok, t, 0.0)
        n += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def percentile_ci(x: np.ndarray, level: float = CI_LEVEL) -> list[float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if not len(x):
        return [float("nan")] * 2
    lo, hi = np.percentile(x, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def bootstrap_p(diff: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a difference: 2·min(share ≤ 0, share ≥ 0), at most 1."""
    d = np.asarray(diff, dtype=np.float64)
    d = d[~np.isnan(d)]
    if not len(d):
        return float("nan")
    return float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input's order: the i-th smallest of the m
    p-values times (m − i + 1), made non-decreasing in that order, capped at 1. NaN (or None)
    passes through and does not count in m."""
    p = np.array([np.nan if v is None else v for v in p], dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if not m:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adj
    return out


def clean(x):
    """NaN → None, recursively, for JSON."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    if isinstance(x, float) and x != x:
        return None
    return x


def group_values(comp, groups, stats, keys, ones, weights) -> tuple[dict, dict]:
    """(observed, resampled): ``{group: {key: (AU → value, mean over AUs)}}`` over each group's
    runs of ``comp`` (a ``Comparison``). ``stats(run name, w)`` gives one run's ``{key: (AU →
    [B], mean over AUs [B])}`` under subject weights ``w``; observed: ``ones``, averaged over the
    runs; resampled: ``weights``, the runs drawn by ``comp.resampled``. A run without an AU
    counts NaN for it."""
    def over_runs(per, combine):
        out = {}
        for key in keys:
            aus = sorted({a for x in per for a in x[key][0]})
            nan = np.full(len(per[0][key][1]), np.nan)
            out[key] = ({a: combine([x[key][0].get(a, nan) for x in per]) for a in aus},
                        combine([x[key][1] for x in per]))
        return out

    obs, boot = {}, {}
    for g in groups:
        runs = [r.name for r in comp.groups[g]]
        obs[g] = over_runs([stats(n, ones) for n in runs], nanmean_terms)
        boot[g] = over_runs([stats(n, weights) for n in runs],
                            lambda vals, g=g: comp.resampled(g, vals))
    return obs, boot
