"""The unseen-AU test of a language sweep: how well an AU whose labels were withheld from training
(``zero_shot_aus``) is detected from its descriptions alone, against the same AU trained normally
and against chance. Reads the sweep's per-frame test predictions; writes a Markdown table.

    python benchmarks/unseen_au.py out/language --au 2 \
        --arms corpus_unseen_au2 shuffled_unseen_au2 learned_unseen_au2 corpus learned \
        --reference learned_unseen_au2 --markdown out/language/unseen_au2.md

Per arm (runs at label fraction 1, one per seed): test AUC of the AU (threshold-free: the ranking
the model makes), F1 at 0.5, F1 at the threshold calibrated on the validation subjects
(``test_tuned`` in the run's metrics.json), and the chance levels (AUC 0.5; F1 of predicting the
AU everywhere). Intervals: 95% percentile of a subject-level bootstrap (the test subjects of the
fold resampled with replacement, the same draws for every run, so differences are paired); the
AUC of a resample is sklearn's with each frame weighted by how often its subject was drawn. Seeds
are averaged inside each resample; the interval covers the choice of test subjects, not training
noise (the per-seed values are shown for that).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def runs_of(root: Path, arm: str) -> list[Path]:
    plan = json.loads((root / "sweep.json").read_text())["runs"]
    dirs = [root / r["dir"] for r in plan if r["arm"] == arm and float(r["label_fraction"]) == 1.0]
    return [d for d in dirs if (d / "metrics.json").is_file()]


def boot_auc(frames: list[pd.DataFrame], au: str, resamples: int, seed: int):
    """(observed mean AUC over runs, resampled means [B]) with shared subject draws."""
    from sklearn.metrics import roc_auc_score

    from hiva.train.bootstrap import draw_weights, subject_draws

    subjects = sorted(set(frames[0]["subject"].astype(str)))
    w = draw_weights(subject_draws(len(subjects), resamples, seed, 1), len(subjects))
    w = np.vstack([np.ones(len(subjects)), w])
    col = {s: i for i, s in enumerate(subjects)}
    out = np.zeros((len(frames), len(w)))
    for r, df in enumerate(frames):
        df = df[df[f"y_{au}"].notna()]
        y = df[f"y_{au}"].astype(int).to_numpy()
        p = df[f"p_{au}"].to_numpy()
        s = df["subject"].astype(str).map(col).to_numpy()
        for b in range(len(w)):
            fw = w[b, s]
            keep = fw > 0
            yk = y[keep]
            out[r, b] = roc_auc_score(yk, p[keep], sample_weight=fw[keep]) \
                if 0 < yk.sum() < len(yk) else np.nan
    mean = np.nanmean(out, 0)
    return mean[0], mean[1:], out[:, 0]


def ci(x) -> str:
    x = np.asarray(x)[~np.isnan(x)]
    lo, hi = np.percentile(x, [2.5, 97.5])
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--au", type=int, default=2)
    ap.add_argument("--arms", nargs="+", required=True)
    ap.add_argument("--reference", default=None, help="Arm the AUC differences are against.")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    au = f"AU{a.au:02d}"
    rows, boots, observed = [], {}, {}
    for arm in a.arms:
        dirs = runs_of(a.root, arm)
        if not dirs:
            print(f"{arm}: no finished run at label fraction 1; skipped")
            continue
        frames = [pd.read_parquet(d / "fold1" / "test_predictions.parquet") for d in dirs]
        obs, bt, per_run = boot_auc(frames, au, a.resamples, a.seed)
        boots[arm], observed[arm] = bt, obs
        ms = [json.loads((d / "fold1" / "metrics.json").read_text()) for d in dirs]
        i = ms[0]["test"]["aus"].index(a.au)
        f1 = np.mean([m["test"]["f1"][i] for m in ms])
        tuned = np.mean([m["test_tuned"]["f1"][i] for m in ms if "test_tuned" in m])
        base = ms[0]["test"]["baseline_f1"][i]
        unseen = a.au in (ms[0].get("zero_shot_aus") or [])
        rows.append((arm, len(dirs), unseen, obs, bt, per_run, f1, tuned, base))
    ref = a.reference if a.reference in boots else None
    lines = [f"{au} on the test subjects ({rows[0][1] if rows else 0} seeds per arm; 95% CIs from "
             f"a subject bootstrap, {a.resamples} resamples, paired across arms)", "",
             f"| arm | {au} labels in training | AUC [95% CI] | Δ AUC vs {ref or '-'} [95% CI] "
             f"| AUC per seed | F1@0.5 | F1, val-calibrated threshold | F1 all-positive |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, _n, unseen, obs, bt, per_run, f1, tuned, base in rows:
        if ref and arm != ref:
            d = bt - boots[ref]
            delta = f"{100 * (obs - observed[ref]):+.1f} {ci(d)}"
        else:
            delta = "reference" if arm == ref else ""
        lines.append(f"| {arm} | {'withheld' if unseen else 'used'} | {100 * obs:.1f} {ci(bt)} | "
                     f"{delta} | {' / '.join(f'{100 * v:.1f}' for v in per_run)} | "
                     f"{100 * f1:.1f} | {100 * tuned:.1f} | {100 * base:.1f} |")
    lines += ["", "Chance: AUC 50.0; F1 of predicting the AU on every frame in the last column."]
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        a.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
