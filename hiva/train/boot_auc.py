"""ROC AUC under subject weights, exactly, for ``hiva report``'s bootstrap.

Per fold and AU, the test frames with a known label reduce to a subjects × subjects matrix of
pair counts: ``pairs[s, t]`` = Σ over (positive frame of subject s, negative frame of subject t)
of 2·[p_pos > p_neg] + [p_pos = p_neg] (twice the usual tie-halved count, so every entry is an
integer), plus each subject's positive and negative frame counts ``pos[s]``, ``neg[t]``. A
resample that draws subject s w[s] times weighs its frames w[s] times, so its AUC is

    AUC(w) = wᵀ·pairs·w / (2 · (w·pos) · (w·neg))

(NaN where the resample holds no positive or no negative frame): ``roc_auc_score`` of the frames
repeated, with ties counting ½. Weights and pair counts are integers held in float64, so the
products are exact whatever order BLAS sums in. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FoldAUC:
    """One fold's AUC pieces per AU ``a`` (the order of its ``FoldCounts.aus``): ``pairs[a]``
    (subjects × subjects), ``pos[a]``, ``neg[a]`` (subjects), all float64 integers."""

    pairs: np.ndarray
    pos: np.ndarray
    neg: np.ndarray


def fold_auc(codes: np.ndarray, n_subjects: int, p: np.ndarray, y: np.ndarray) -> FoldAUC:
    """``FoldAUC`` of frames with subject index ``codes`` (F), scores ``p`` (F × AUs) and labels
    ``y`` (F × AUs; 1, 0, NaN = unknown, left out). Integer counting only (no BLAS): per AU, each
    subject's negatives are histogrammed over the score ranks, and each positive frame adds, for
    every subject t, twice t's negatives ranked below it plus those tied with it."""
    s_n = n_subjects
    n_aus = p.shape[1]
    pairs = np.zeros((n_aus, s_n, s_n))
    pos = np.zeros((n_aus, s_n))
    neg = np.zeros((n_aus, s_n))
    t_idx = np.arange(s_n)[:, None] * s_n
    for a in range(n_aus):
        known = (y[:, a] == 1) | (y[:, a] == 0)
        ya, pa, sa = y[known, a], p[known, a], codes[known]
        if not len(ya):
            continue
        _, rank = np.unique(pa, return_inverse=True)  # equal scores share a rank
        n_r = int(rank.max()) + 1
        is_pos = ya == 1
        sn, rn = sa[~is_pos], rank[~is_pos]
        h_neg = np.bincount(sn * n_r + rn, minlength=s_n * n_r).reshape(s_n, n_r)
        score = 2 * (np.cumsum(h_neg, axis=1) - h_neg) + h_neg  # [t, r]: 2·below + tied
        sp, rp = sa[is_pos], rank[is_pos]
        got = np.bincount((t_idx + sp[None, :]).ravel(), weights=score[:, rp].ravel(),
                          minlength=s_n * s_n)  # [t, s], integers < 2^53: exact
        pairs[a] = got.reshape(s_n, s_n).T
        pos[a] = np.bincount(sp, minlength=s_n)
        neg[a] = np.bincount(sn, minlength=s_n)
    return FoldAUC(pairs, pos, neg)


def weighted_auc(fa: FoldAUC, w: np.ndarray) -> np.ndarray:
    """AUC per resample and AU (B × AUs) under subject weights ``w`` (B × subjects)."""
    n_aus, s_n, _ = fa.pairs.shape
    b = len(w)
    wp = w @ fa.pairs.transpose(1, 0, 2).reshape(s_n, n_aus * s_n)  # B × (AU, t)
    num = (wp.reshape(b, n_aus, s_n) * w[:, None, :]).sum(2)
    den = 2 * (w @ fa.pos.T) * (w @ fa.neg.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)
