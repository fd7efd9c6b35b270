"""The unseen-AU test of a sweep: how well an AU whose labels were withheld from training, epoch
choice and thresholds (``zero_shot_aus``) is detected from its descriptions alone, beside the
shortcut that could fake it: another AU's label used as its score (co-occurrence).

    python benchmarks/unseen_au.py out/bench/unseen --au 2 --reference shuffled_unseen_au2 \
        --markdown out/bench/unseen/unseen_au2.md

Per arm of the sweep (one run per seed): the AU's test ROC AUC (threshold-free, the primary
number: no label of the AU chooses anything) and its F1 at threshold 0.5, with 95% intervals from
``hiva report``'s hierarchical bootstrap (test subjects and seeds resampled, paired across arms),
and the paired Δ AUC against the reference with its p. No validation-calibrated threshold is shown:
calibrating on the AU's labelled validation frames would be few-shot, not zero-shot.

The co-occurrence baselines score the AU on the same test frames with another AU's *label*: AU1's
(the AU's neighbour on the brow) and the best of all other AUs' (chosen on the test frames, so an
upper bound). On a set whose AUs co-occur they sit far above 50; on the independent set near 50.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from emit import emit


def _ci(x) -> str:
    from hiva.train.boot_stats import percentile_ci

    lo, hi = percentile_ci(np.asarray(x, dtype=np.float64))
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def label_baselines(comp, au: int) -> list[tuple[str, float, np.ndarray]]:
    """(name, observed AUC, resampled AUCs) of other AUs' labels as the score of ``au``, on the
    test frames of the comparison's first run, under its subject draws (fold 1)."""
    from hiva.train.boot_auc import fold_auc, weighted_auc
    from hiva.train.bootstrap import draw_weights

    run = next(iter(comp.groups.values()))[0]
    k = min(run.folds)
    df = pd.read_parquet(run.path / f"fold{k}" / "test_predictions.parquet")
    ys = sorted(int(c[4:]) for c in df.columns if c.startswith("y_AU"))
    subjects = comp.subjects[k]
    codes = df["subject"].astype(str).map({s: i for i, s in enumerate(subjects)}).to_numpy()
    y = df[f"y_AU{au:02d}"].to_numpy(np.float64, na_value=np.nan)
    w = draw_weights(comp.draws[k], len(subjects))
    ones = np.ones((1, len(subjects)))
    out = []
    for other in (a for a in ys if a != au):
        score = df[f"y_AU{other:02d}"].to_numpy(np.float64, na_value=np.nan)
        fa = fold_auc(codes, len(subjects), np.nan_to_num(score, nan=0.5)[:, None], y[:, None])
        out.append((f"AU{other}'s label", float(weighted_auc(fa, ones)[0, 0]),
                    weighted_auc(fa, w)[:, 0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--au", type=int, default=2)
    ap.add_argument("--reference", default=None, help="Arm the AUC differences are against.")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    from hiva.train.boot_stats import bootstrap_p
    from hiva.train.report import sweep_comparison

    comp, _ = sweep_comparison(a.root, a.reference, a.resamples, a.seed)
    ref = comp.reference
    au = a.au
    name = f"AU{au}"
    lines = [f"{name} on the test subjects, its labels withheld from training, epoch choice and "
             f"thresholds. AUC ×100 (primary) and F1 at 0.5 ×100 with 95% intervals from a "
             f"hierarchical bootstrap ({comp.resamples} resamples of test subjects and seeds, "
             f"paired across arms); Δ AUC vs {ref}.", "",
             f"| arm | seeds | {name} AUC [95% CI] | Δ AUC vs {ref} [95% CI] | p | "
             f"{name} F1@0.5 [95% CI] | AUC per seed |", "|---|---|---|---|---|---|---|"]
    for g, runs in comp.groups.items():
        obs, bt = comp.observed[g], comp.boot[g]
        if au not in obs.auc:
            continue
        delta = p = ""
        if g != ref:
            d = bt.auc[au] - comp.boot[ref].auc[au]
            delta = f"{100 * (obs.auc[au][0] - comp.observed[ref].auc[au][0]):+.1f} {_ci(d)}"
            p = f"{bootstrap_p(d):.3f}"
        seeds = " / ".join(f"{100 * v:.1f}" for v in run_au_auc(comp, g, au))
        lines.append(f"| {g}{'*' if comp.exploratory(g) else ''} | {len(runs)} | "
                     f"{100 * obs.auc[au][0]:.1f} {_ci(bt.auc[au])} | "
                     f"{'reference' if g == ref else delta} | {p} | "
                     f"{100 * obs.au[au][0]:.1f} {_ci(bt.au[au])} | {seeds} |")
    base = label_baselines(comp, au)
    best = max(base, key=lambda t: t[1])
    au1 = [t for t in base if t[0] == "AU1's label"]
    lines += ["", f"Co-occurrence baselines (no model: another AU's test label as the {name} "
              "score; same subject draws): " + "; ".join(
                  f"{n} AUC {100 * v:.1f} {_ci(b)}" for n, v, b in
                  ([au1[0]] if au1 else []) + [(f"best other ({best[0]})", best[1], best[2])])
              + ". Chance: AUC 50.0."]
    if any(comp.exploratory(g) for g in comp.groups):
        lines.append("* fewer than 8 seeds: exploratory, not a claim.")
    emit("\n".join(lines), a.markdown)


def run_au_auc(comp, group: str, au: int) -> list[float]:
    """Each run's own AUC of ``au`` (all test subjects, no resampling)."""
    from hiva.train.bootstrap import run_stats

    runs = comp.groups[group]
    ones = {k: np.ones((1, len(s))) for k, s in comp.subjects.items()}
    return [float(s.auc[au][0]) if au in s.auc else float("nan")
            for s in run_stats(runs, ones)]


if __name__ == "__main__":
    main()
