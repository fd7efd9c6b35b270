"""Activation maps against the AU regions in ``hiva report``: energy in the region and the
pointing game per group, with intervals from the same resamples as F1 (hiva.train.bootstrap: the
same test-subject draws and, under the hierarchical bootstrap, the same seed draws), and the
paired difference against the reference. numpy and pandas only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.train.boot_runs import runs_with
from hiva.train.boot_stats import (
    bootstrap_p,
    clean,
    group_values,
    nanmean_terms,
    percentile_ci,
)
from hiva.train.bootstrap import Comparison, draw_weights

LOC_KEYS = ("energy", "pointing", "energy_chance", "pointing_chance")


@dataclass(frozen=True)
class FoldLocalisation:
    """One fold's map scores summed per test subject and AU over the frames where the AU is
    labelled present and has a region: ``sums[s, a] = (frames, Σ energy, Σ pointing, Σ energy
    chance, Σ pointing chance)``."""

    subjects: tuple[str, ...]
    aus: tuple[int, ...]
    sums: np.ndarray


def read_fold_localisation(path: str | Path) -> FoldLocalisation | None:
    """``FoldLocalisation`` of a predictions file, or None when it holds no map scores."""
    import pandas as pd
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    aus = sorted(int(c[len("energy_AU"):]) for c in names if c.startswith("energy_AU"))
    if not aus:
        return None
    cols = ["subject"] + [f"{k}_AU{a:02d}" for a in aus for k in ("y",) + LOC_KEYS]
    df = pd.read_parquet(path, columns=cols)
    codes, subjects = pd.factorize(df["subject"].astype(str), sort=True)
    n = len(subjects)
    sums = np.zeros((n, len(aus), 1 + len(LOC_KEYS)))
    for j, a in enumerate(aus):
        y = df[f"y_AU{a:02d}"].to_numpy(np.float64, na_value=np.nan)
        vals = [df[f"{k}_AU{a:02d}"].to_numpy(np.float64) for k in LOC_KEYS]
        sel = (y == 1) & np.isfinite(vals[0])
        sums[:, j, 0] = np.bincount(codes, weights=sel.astype(np.float64), minlength=n)
        for t, v in enumerate(vals):
            sums[:, j, 1 + t] = np.bincount(codes, weights=np.where(sel, v, 0.0), minlength=n)
    return FoldLocalisation(tuple(subjects), tuple(aus), sums)


def localisation_comparison(comp: Comparison) -> dict | None:
    """Energy in the region and pointing game of each group of ``comp`` (the mean over its runs
    of each AU's frame-pooled mean, and of their mean over AUs), with 95% CIs from the same
    resamples as its F1 (subjects, and seeds under the hierarchical bootstrap) and the paired
    difference against the reference; None when no group has map scores. Groups some of whose
    runs lack scores are named in ``missing``. A Δ is ``delta_exploratory`` when either side
    has fewer than ``EXPLORATORY_BELOW`` runs."""
    per_run, missing = runs_with(comp.groups, read_fold_localisation)
    if not per_run:
        return None
    weights = {k: draw_weights(d, len(comp.subjects[k])) for k, d in comp.draws.items()}
    ones = {k: np.ones((1, len(s))) for k, s in comp.subjects.items()}

    def stats(name, w):
        """{key: (AU → [B] mean over folds of the frame-pooled means), mean over AUs [B]}."""
        folds = per_run[name]
        res = {}
        for t, key in enumerate(LOC_KEYS):
            au_terms: dict[int, list[np.ndarray]] = {}
            for k, fl in folds.items():
                order = [comp.subjects[k].index(s) for s in fl.subjects]
                wk = w[k][:, order]
                pooled = np.einsum("bs,sac->bac", wk, fl.sums)
                with np.errstate(invalid="ignore", divide="ignore"):
                    m = np.where(pooled[..., 0] > 0, pooled[..., 1 + t] / pooled[..., 0], np.nan)
                for j, a in enumerate(fl.aus):
                    au_terms.setdefault(a, []).append(m[:, j])
            au = {a: nanmean_terms(v) for a, v in sorted(au_terms.items())}
            res[key] = (au, nanmean_terms(list(au.values())))
        return res

    groups = [g for g in comp.groups if g not in missing]
    obs, boot = group_values(comp, groups, stats, LOC_KEYS, ones, weights)
    ref = comp.reference if comp.reference in obs else None
    out = []
    for g in groups:
        row = {"name": g, "aus": list(obs[g]["energy"][0])}
        for key in LOC_KEYS:
            au_o, mean_o = obs[g][key]
            au_b, mean_b = boot[g][key]
            row[key] = [float(au_o[a][0]) for a in au_o]
            row[f"mean_{key}"] = float(mean_o[0])
            if not key.endswith("chance"):
                row[f"{key}_ci"] = [percentile_ci(au_b[a]) for a in au_b]
                row[f"mean_{key}_ci"] = percentile_ci(mean_b)
                if ref is not None and g != ref:
                    d = mean_b - boot[ref][key][1]
                    row[f"delta_{key}"] = float(mean_o[0] - obs[ref][key][1][0])
                    row[f"delta_{key}_ci"] = percentile_ci(d)
                    row[f"delta_{key}_p"] = bootstrap_p(d)
        if ref is not None and g != ref:
            row["delta_exploratory"] = comp.exploratory(g) or comp.exploratory(ref)
        out.append(row)
    return clean({"reference": ref, "groups": out, "missing": missing,
                  "frames": "test frames with the AU labelled present and a region"})
