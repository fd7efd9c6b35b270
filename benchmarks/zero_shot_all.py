"""Zero-shot for every AU (issue 29): a sweep whose runs each withhold one group of AUs
(``zero_shot_aus``) and whose arms are named ``MODE_GROUP`` (``corpus_z1`` …), pooled per text
mode over the groups, so that every AU is scored once without any label of it (training, epoch
choice, thresholds: threshold 0.5).

    python benchmarks/zero_shot_all.py out/lang/zero_shot --reference shuffled \
        --markdown out/lang/zero_shot/all.md

Prints, per mode: the mean zero-shot AUC over all withheld AUs (the primary number) and the mean
F1 at 0.5, with 95% intervals from ``hiva report``'s hierarchical bootstrap (test subjects and
seeds; every group's runs share the seeds, so the draws pair across groups and modes), the paired
Δ against the reference mode with its p and Holm p over the printed contrasts; then per AU the
AUC of every mode, and the co-occurrence baseline per AU (the best other AU's test label as its
score: an upper bound, as it is chosen on the test frames).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_summary import _p
from bench_summary import _raw as _p_raw
from emit import emit
from unseen_au import _ci, label_baselines


def withheld(comp) -> dict[str, tuple[str, list[int]]]:
    """{group: (mode, the AUs its runs withhold)} for the groups named MODE_GROUP."""
    out = {}
    for g, runs in comp.groups.items():
        m = json.loads((runs[0].path / f"fold{min(runs[0].folds)}" / "metrics.json").read_text())
        z = [int(a) for a in m.get("zero_shot_aus", [])]
        if z and "_" in g:
            out[g] = (g.rsplit("_", 1)[0], z)
    return out


def pooled(comp, groups: dict, metric: str) -> dict[str, dict[int, tuple[float, np.ndarray]]]:
    """{mode: {au: (observed, resampled)}} of ``metric`` (auc | f1) for each withheld AU."""
    out: dict = {}
    for g, (mode, aus) in groups.items():
        obs, bt = comp.observed[g], comp.boot[g]
        src_o, src_b = (obs.auc, bt.auc) if metric == "auc" else (obs.au, bt.au)
        for a in aus:
            out.setdefault(mode, {})[a] = (float(src_o[a][0]), np.asarray(src_b[a], float))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--reference", default="shuffled", help="Mode the Δs are against.")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from hiva.train.boot_stats import bootstrap_p, holm
    from hiva.train.report import sweep_comparison

    comp, unfinished = sweep_comparison(a.root, None, a.resamples, a.seed)
    groups = withheld(comp)
    auc, f1 = pooled(comp, groups, "auc"), pooled(comp, groups, "f1")
    every = sorted({au for _, aus in groups.values() for au in aus})
    modes = [m for m in auc if sorted(auc[m]) == every]  # modes with every AU scored
    partial = [m for m in auc if m not in modes]
    ref = a.reference
    if ref not in modes:
        raise SystemExit(f"reference mode {ref} has not scored every AU yet; modes with all: "
                         f"{', '.join(modes) or 'none'}")
    seeds = {m: min(len(comp.groups[g]) for g, (mm, _) in groups.items() if mm == m)
             for m in modes}

    def mean(d):  # (observed, resampled) mean over the AUs
        return (float(np.mean([d[x][0] for x in every])),
                np.nanmean(np.stack([d[x][1] for x in every]), 0))

    rows = {m: (mean(auc[m]), mean(f1[m])) for m in modes}
    contrasts = {}
    for m in modes:
        if m != ref:
            d = rows[m][0][1] - rows[ref][0][1]
            contrasts[m] = (rows[m][0][0] - rows[ref][0][0], d, bootstrap_p(d))
    floor = 2 / comp.resamples  # a p no resample crossed is < 2/B: Holm on that bound
    adj = dict(zip(contrasts, holm([max(c[2], floor) for c in contrasts.values()])))
    lines = [f"Zero-shot for every AU: {len(every)} AUs in {len(groups) // max(len(auc), 1)} "
             f"groups, each group's labels withheld from training, epoch choice and thresholds "
             f"(threshold 0.5); each AU scored on the test subjects of the run that withholds "
             f"it. Mean over the AUs, ×100, 95% intervals from a hierarchical bootstrap "
             f"({comp.resamples} resamples of test subjects and seeds, paired across modes); "
             f"Δ vs {ref}, Holm over the {len(contrasts)} contrasts.", "",
             f"| mode | seeds | zero-shot mean AUC [95% CI] | Δ AUC vs {ref} [95% CI] | p | "
             "p (Holm) | mean F1@0.5 [95% CI] |", "|---|---|---|---|---|---|---|"]
    for m in modes:
        (ao, ab), (fo, fb) = rows[m]
        if m == ref:
            cells = "reference | | "
        else:
            dv, db, p = contrasts[m]
            cells = f"{100 * dv:+.1f} {_ci(db)} | {_p_raw(p, comp.resamples)} | {_p(adj[m], p)}"
        star = "*" if seeds[m] < 8 else ""
        lines.append(f"| {m}{star} | {seeds[m]} | {100 * ao:.1f} {_ci(ab)} | {cells} | "
                     f"{100 * fo:.1f} {_ci(fb)} |")
    lines += ["", "Per AU, zero-shot AUC ×100 (each from the run that withholds it); the "
              "co-occurrence bound is the best other AU's test label used as the score.", "",
              "| AU | group | " + " | ".join(modes) + " | co-occurrence bound |",
              "|---" * (len(modes) + 3) + "|"]
    group_of = {au: g.rsplit("_", 1)[1] for g, (_, aus) in groups.items() for au in aus}
    bounds = []
    for au in every:
        base = label_baselines(comp, au)
        best = max(base, key=lambda t: t[1])
        bounds.append(best[1])
        cells = []
        for m in modes:
            o, b = auc[m][au]
            cells.append(f"{100 * o:.1f}" + (f" {_ci(b)}" if m in ("corpus", ref) else ""))
        lines.append(f"| AU{au} | {group_of[au]} | " + " | ".join(cells)
                     + f" | {100 * best[1]:.1f} ({best[0]}) |")
    lines.append("| mean | | " + " | ".join(f"{100 * rows[m][0][0]:.1f}" for m in modes)
                 + f" | {100 * float(np.mean(bounds)):.1f} |")
    if partial:
        lines.append(f"\nModes not yet scored on every AU (left out): {', '.join(partial)}.")
    if unfinished:
        lines.append(f"{len(unfinished)} runs of the sweep had not finished.")
    if any(s < 8 for s in seeds.values()):
        lines.append("* fewer than 8 seeds: exploratory, not a claim.")
    emit("\n".join(lines), a.markdown)
    if a.json:
        js = {"aus": every, "reference": ref, "resamples": comp.resamples, "modes": {
            m: {"seeds": seeds[m], "mean_auc": rows[m][0][0], "mean_auc_ci": _raw(rows[m][0][1]),
                "mean_f1": rows[m][1][0], "mean_f1_ci": _raw(rows[m][1][1]),
                "auc": {str(x): auc[m][x][0] for x in every},
                "auc_ci": {str(x): _raw(auc[m][x][1]) for x in every},
                **({"delta_auc": contrasts[m][0], "delta_auc_ci": _raw(contrasts[m][1]),
                    "p": contrasts[m][2], "p_holm": float(adj[m])} if m in contrasts else {})}
            for m in modes}, "cooccurrence_bound": dict(zip(map(str, every), bounds))}
        a.json.write_text(json.dumps(js, indent=2))


def _raw(x) -> list[float]:
    from hiva.train.boot_stats import percentile_ci

    return percentile_ci(np.asarray(x, dtype=np.float64))


if __name__ == "__main__":
    main()
