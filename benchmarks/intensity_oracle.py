"""What the synthetic renderer allows for AU intensity, beside a trained model: per AU, ICC(3,1)
and MAE on the test subjects of a run's split for

- a geometry oracle: a ridge regression (scikit-learn ``RidgeCV``) per AU from the manifest's
  exact landmark displacement (``landmarks − landmarks_neutral``: the drawn anchor points of the
  face against the same identity at the same pose with no AU) to the drawn intensity, fitted on
  the run's training and validation subjects, its output clipped to [0, 5];
- the trivial baseline: each AU's training mean (ICC 0 by construction: it does not vary).

The synthetic labels are the exact drawn intensities (no coder noise), so the oracle is a
reference for what the drawn geometry carries linearly, not a ceiling: it cannot see what an AU
draws as shading, wrinkles or colour (AU6's cheek colour, AU14's dimples, AU23's lip lines), and a
model that reads the pixels may beat it there. Intervals: 95% percentile CIs over the test
subjects, drawn as ``hiva report`` draws them (``hiva.train.bootstrap.subject_draws``, seed 0,
fold 1): the oracle and the baseline are fixed functions, so subjects are the only noise.

    .venv/bin/python benchmarks/intensity_oracle.py --manifest out/bench/confirm/manifest.parquet \
        --run out/bench/intensity/regression/seed0 [--report out/bench/intensity/report.json]
        [--markdown out/bench/intensity/oracle.md] [--resamples 2000]

With ``--report`` (``hiva report ROOT --json``) the model's per-AU values, with the report's
intervals (test subjects and seeds), come first in the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def split_of(run: Path) -> tuple[list[str], list[str]]:
    """(training + validation subjects, test subjects) of a one-split run's fold 1."""
    m = json.loads((run / "fold1" / "metrics.json").read_text())
    ids = m["subject_ids"]
    return sorted(ids["train"] + ids["val"]), sorted(ids["test"])


def oracle_predictions(df, aus, fit_subjects) -> tuple[np.ndarray, np.ndarray]:
    """(ridge predictions, training-mean predictions): frames × AUs."""
    from sklearn.linear_model import RidgeCV

    x = np.stack([np.asarray(a, np.float64) - np.asarray(b, np.float64)
                  for a, b in zip(df["landmarks"], df["landmarks_neutral"])])
    fit = df["subject"].isin(fit_subjects).to_numpy()
    ridge = np.zeros((len(df), len(aus)))
    mean = np.zeros((len(df), len(aus)))
    for j, a in enumerate(aus):
        y = df[f"AU{a:02d}_intensity"].to_numpy(np.float64)
        ok = fit & np.isfinite(y)
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x[ok], y[ok])
        ridge[:, j] = np.clip(model.predict(x), 0, 5)
        mean[:, j] = y[ok].mean()
    return ridge, mean


def scores(pred, target, subjects, codes, resamples: int) -> dict:
    """Per AU and their mean: ICC(3,1) and MAE with 95% CIs over resampled test subjects."""
    from hiva.train.boot_stats import nanmean_terms, percentile_ci
    from hiva.train.bootstrap import draw_weights, subject_draws
    from hiva.train.intensity_metrics import from_sums, intensity_sums

    n = len(subjects)
    sums = np.stack([intensity_sums(pred[codes == s], target[codes == s]) for s in range(n)])
    w = np.concatenate([np.ones((1, n)), draw_weights(subject_draws(n, resamples, 0, 1), n)])
    icc, mae = from_sums(np.einsum("bs,sac->bac", w, sums))  # B × AUs
    out = {}
    for key, v in (("icc", icc), ("mae", mae)):
        mean = nanmean_terms([v[:, j] for j in range(v.shape[1])])
        out[key] = [float(x) for x in v[0]]
        out[f"{key}_ci"] = [percentile_ci(v[1:, j]) for j in range(v.shape[1])]
        out[f"mean_{key}"] = float(mean[0])
        out[f"mean_{key}_ci"] = percentile_ci(mean[1:])
    return out


def cell(v, ci=None) -> str:
    if v is None or v != v:
        return "n/a"
    v, ci = round(v, 6) + 0.0, ci and [round(c, 6) + 0.0 for c in ci if c is not None]  # no -0
    return f"{v:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and len(ci) == 2 else "")


def table(aus, cols: dict[str, dict]) -> str:
    head = ["AU"] + [f"{name} {k.upper()}" for name in cols for k in ("icc", "mae")]
    rows = [head, ["---"] * len(head)]
    for j, a in enumerate(aus):
        rows.append([f"AU{a:02d}"] + [cell(c[k][j], c[f"{k}_ci"][j]) for c in cols.values()
                                      for k in ("icc", "mae")])
    rows.append(["mean"] + [cell(c[f"mean_{k}"], c[f"mean_{k}_ci"]) for c in cols.values()
                            for k in ("icc", "mae")])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main() -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--run", required=True, help="a run folder whose fold 1 gives the split")
    ap.add_argument("--report", help="hiva report --json of the intensity sweep")
    ap.add_argument("--group", help="the report's group to show (default: the first)")
    ap.add_argument("--aus", default="bp4d", help="the AUs scored (default: BP4D's 12; "
                    "with --report: the model's)")
    ap.add_argument("--markdown")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    from hiva.data.manifest import read_manifest
    from hiva.facs import parse_aus

    df = read_manifest(args.manifest)
    report = json.loads(Path(args.report).read_text())["intensity"] if args.report else None
    g = (next(x for x in report["groups"] if args.group in (None, x["name"])) if report
         else None)
    aus = list(g["aus"]) if g else list(parse_aus(args.aus))
    fit, test = split_of(Path(args.run))
    ridge, mean = oracle_predictions(df, aus, fit)
    sel = df["subject"].isin(test).to_numpy()
    codes, subjects = pd.factorize(df.loc[sel, "subject"].astype(str), sort=True)
    target = df.loc[sel, [f"AU{a:02d}_intensity" for a in aus]].to_numpy(np.float64)
    cols = {}
    if g:
        cols[f"model ({g['name']}, {g['runs']} seeds)"] = g
    cols["ridge oracle"] = scores(ridge[sel], target, subjects, codes, args.resamples)
    cols["training mean"] = scores(mean[sel], target, subjects, codes, args.resamples)
    text = (f"{len(subjects)} test subjects, {int(sel.sum())} frames; fitted on {len(fit)} "
            f"subjects ({int((~sel).sum())} frames); 95% CIs over test subjects "
            f"({args.resamples} resamples)" + (" and, for the model, seeds" if g else "")
            + "\n\n" + table(aus, cols))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
