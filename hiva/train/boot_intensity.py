"""AU intensity in ``hiva report``: ICC(3,1) and MAE per group (runs with the intensity head),
with intervals from the same resamples as F1 (hiva.train.bootstrap: the same test-subject draws
and, under the hierarchical bootstrap, the same seed draws), and the paired difference of their
means against the reference. numpy and pandas only (no torch).

A run's value is the mean over its folds of each AU's ICC and MAE over the fold's test frames
with a known intensity (``hiva.train.intensity_metrics``; a resample weights each test subject's
frames by how often the subject was drawn), and of their means over AUs; a group's is the mean
over its runs, as for F1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.train.boot_runs import runs_with
from hiva.train.boot_stats import clean, group_values, nanmean_terms, percentile_ci
from hiva.train.bootstrap import Comparison, draw_weights
from hiva.train.intensity_metrics import SUMS, from_sums, intensity_sums

KEYS = ("icc", "mae")


@dataclass(frozen=True)
class FoldIntensity:
    """One fold's intensity sums per test subject and AU (``SUMS``: frames with a known
    intensity, Σy, Σŷ, Σy², Σŷ², Σyŷ, Σ|ŷ − y|): ``sums[s, a]``."""

    subjects: tuple[str, ...]
    aus: tuple[int, ...]
    sums: np.ndarray


def read_fold_intensity(path: str | Path) -> FoldIntensity | None:
    """``FoldIntensity`` of a predictions file (its ``r_AUxx`` and ``i_AUxx`` columns), or None
    when it holds no intensities (a model without the head)."""
    import pandas as pd
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    aus = sorted(int(c[len("r_AU"):]) for c in names
                 if c.startswith("r_AU") and f"i_AU{c[len('r_AU'):]}" in names)
    if not aus:
        return None
    df = pd.read_parquet(path, columns=["subject"] + [f"{k}_AU{a:02d}" for a in aus
                                                      for k in ("r", "i")])
    codes, subjects = pd.factorize(df["subject"].astype(str), sort=True)
    sums = np.zeros((len(subjects), len(aus), len(SUMS)))
    pred = np.stack([df[f"r_AU{a:02d}"].to_numpy(np.float64) for a in aus], 1)
    target = np.stack([df[f"i_AU{a:02d}"].to_numpy(np.float64, na_value=np.nan) for a in aus], 1)
    for s in range(len(subjects)):
        sel = codes == s
        sums[s] = intensity_sums(pred[sel], target[sel])
    return FoldIntensity(tuple(subjects), tuple(aus), sums)


def intensity_comparison(comp: Comparison) -> dict | None:
    """ICC(3,1) and MAE of each group of ``comp`` whose runs have intensities (per AU and the
    mean over AUs, with 95% CIs from the same resamples as F1) and the paired difference of
    the means against the reference (when it has them too); None when no group has any.
    Groups some of whose runs lack them are named in ``missing``."""
    per_run, missing = runs_with(comp.groups, read_fold_intensity)
    if not per_run:
        return None
    weights = {k: draw_weights(d, len(comp.subjects[k])) for k, d in comp.draws.items()}
    ones = {k: np.ones((1, len(s))) for k, s in comp.subjects.items()}

    def stats(name, w):
        """{key: (AU → [B] mean over folds, mean over AUs [B])} of one run."""
        terms: dict[str, dict[int, list[np.ndarray]]] = {key: {} for key in KEYS}
        for k, fi in per_run[name].items():
            order = [comp.subjects[k].index(s) for s in fi.subjects]
            pooled = np.einsum("bs,sac->bac", w[k][:, order], fi.sums)
            for key, v in zip(KEYS, from_sums(pooled)):
                for j, a in enumerate(fi.aus):
                    terms[key].setdefault(a, []).append(v[:, j])
        res = {}
        for key in KEYS:
            au = {a: nanmean_terms(v) for a, v in sorted(terms[key].items())}
            res[key] = (au, nanmean_terms(list(au.values())))
        return res

    groups = [g for g in comp.groups if g not in missing]
    obs, boot = group_values(comp, groups, stats, KEYS, ones, weights)
    ref = comp.reference if comp.reference in obs else None
    out = []
    for g in groups:
        row = {"name": g, "aus": list(obs[g]["icc"][0]), "runs": len(comp.groups[g])}
        for key in KEYS:
            au_o, mean_o = obs[g][key]
            au_b, mean_b = boot[g][key]
            row[key] = [float(au_o[a][0]) for a in au_o]
            row[f"{key}_ci"] = [percentile_ci(au_b[a]) for a in au_b]
            row[f"mean_{key}"] = float(mean_o[0])
            row[f"mean_{key}_ci"] = percentile_ci(mean_b)
            if ref is not None and g != ref:
                row[f"delta_{key}"] = float(mean_o[0] - obs[ref][key][1][0])
                row[f"delta_{key}_ci"] = percentile_ci(mean_b - boot[ref][key][1])
        out.append(row)
    return clean({"reference": ref, "groups": out, "missing": missing,
                  "frames": "test frames with a known intensity"})


def intensity_tables(s: dict) -> list[tuple[str, list[list[str]], str]]:
    """[(title, rows, footnote)] for ``hiva report``: per group the mean ICC(3,1) and MAE over
    AUs with CIs and Δ vs the reference; per AU both for every group."""
    def num(v, ci=None, sign=False) -> str:
        if v is None or v != v:
            return "n/a"
        txt = f"{v:+.2f}" if sign else f"{v:.2f}"
        if ci and all(c is not None and c == c for c in ci):
            txt += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        return txt

    ref = s["reference"]
    head = ("AU intensity on the 0-5 scale, over " + s["frames"] + ": ICC(3,1) (two-way mixed, "
            "consistency, single rater) and MAE per AU, mean over AUs, folds, then runs; 95% "
            "CIs from the same resamples as F1" + (f"; Δ vs {ref}" if ref else ""))
    rows = [["group", "runs", "ICC [95% CI]", "MAE [95% CI]", "Δ ICC [95% CI]",
             "Δ MAE [95% CI]"]]
    for g in s["groups"]:
        is_ref = g["name"] == ref or ref is None
        rows.append([g["name"], str(g["runs"]), num(g["mean_icc"], g["mean_icc_ci"]),
                     num(g["mean_mae"], g["mean_mae_ci"]),
                     "reference" if is_ref else num(g.get("delta_icc"), g.get("delta_icc_ci"),
                                                    True),
                     "" if is_ref else num(g.get("delta_mae"), g.get("delta_mae_ci"), True)])
    if s.get("missing"):
        rows.append([f"(no intensities: {', '.join(s['missing'])})"] + [""] * 5)
    aus = sorted({a for g in s["groups"] for a in g["aus"]})
    per_au = [["AU", *(f"{g['name']} ICC [95% CI]" for g in s["groups"]),
               *(f"{g['name']} MAE [95% CI]" for g in s["groups"])]]
    for a in aus:
        row = [f"AU{a:02d}"]
        for key in KEYS:
            for g in s["groups"]:
                i = g["aus"].index(a) if a in g["aus"] else None
                row.append("-" if i is None else num(g[key][i], g[f"{key}_ci"][i]))
        per_au.append(row)
    return [(head, rows, "n/a: undefined (ICC: under two frames or no variance)"),
            ("Per-AU intensity ICC(3,1) and MAE [95% CI]", per_au, "")]
