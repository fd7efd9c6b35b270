"""The summary table of the confirmatory benchmark (docs/results/benchmark.md), from the ``hiva
report --json`` files of its sweeps (``make benchmark``): the primary contrast (heads-only, then
fine-tuned), every other contrast against the full model, with Δ mean F1 and Δ mean AUC, their
95% hierarchical intervals and Holm-adjusted p, and the unseen-AU table pasted from
benchmarks/unseen_au.py.

    python benchmarks/bench_summary.py --main out/bench/main/report.json \
        --finetune out/bench/finetune/report.json --unseen out/bench/unseen/unseen_au2.md \
        --out out/bench/summary.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# What each arm of bench_main.yaml changes against the full model (the reference, `corpus`).
MEANING = {
    "shuffled": "text: each AU reads another AU's descriptions",
    "names": "text: the AU's name only",
    "random": "text: random vectors of the corpus's size",
    "learned": "text: free per-AU vectors (no language)",
    "bias": "region prior added to the attention logits",
    "kl": "region prior as a KL loss term",
    "no_graph": "without the AU graph",
    "no_ddca": "without DDCA",
    "no_cdca": "without CDCA",
}


def _pct(v, sign=True) -> str:
    return "n/a" if v is None else (f"{100 * v:+.1f}" if sign else f"{100 * v:.1f}")


def _ci(v, ci) -> str:
    if v is None or ci is None or None in ci:
        return _pct(v)
    return f"{_pct(v)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def _p(p, raw=None) -> str:
    """A Holm p; "≤" where the raw p was 0 (no resample crossed 0: an upper bound)."""
    if p is None:
        return "n/a"
    return ("≤" if raw == 0 else "") + (f"{p:.3f}" if p >= 0.001 else "<0.001")


def _raw(p, resamples: int) -> str:
    """An unadjusted bootstrap p; 0 (no resample crossed 0) as "<2/B"."""
    return f"<{2 / resamples:.3f}" if p == 0 else f"{p:.3f}"


def _seeds(n: int) -> str:
    return f"{n}" + ("" if n >= 8 else " (exploratory)")


def rows(report: dict, label: str) -> list[str]:
    out = []
    pr = report.get("primary")
    if pr:
        out.append(f"| **primary: {pr['a']} − {pr['b']}** ({label}) | {_seeds(min(pr['runs']))} | "
                   f"{_ci(pr['delta'], pr['delta_ci'])} | {_p(pr.get('p_holm'), pr.get('p'))} | "
                   f"{_ci(pr['delta_auc'], pr['delta_auc_ci'])} | "
                   f"{_p(pr.get('p_auc_holm'), pr.get('p_auc'))} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--main", type=Path, required=True)
    ap.add_argument("--finetune", type=Path, default=None)
    ap.add_argument("--unseen", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    main_r = json.loads(a.main.read_text())
    ref = main_r["reference"]
    g = {x["name"]: x for x in main_r["groups"]}
    head = ["| contrast | seeds | Δ mean F1 [95% CI] | p (Holm) | Δ mean AUC [95% CI] | "
            "p (Holm) |", "|---|---|---|---|---|---|"]
    body = rows(main_r, "heads-only")
    if a.finetune and a.finetune.is_file():
        body += rows(json.loads(a.finetune.read_text()), "fine-tuned backbone")
    for name, what in MEANING.items():
        if name not in g:
            continue
        x = g[name]
        body.append(f"| {name} − {ref} ({what}) | {_seeds(len(x['runs']))} | "
                    f"{_ci(x.get('delta'), x.get('delta_ci'))} | "
                    f"{_p(x.get('p_holm'), x.get('p'))} | "
                    f"{_ci(x.get('delta_auc'), x.get('delta_auc_ci'))} | "
                    f"{_p(x.get('p_auc_holm'), x.get('p_auc'))} |")
    r = g[ref]
    sub = main_r.get("subjects_per_fold", {})
    intro = (f"The full model (`{ref}`) scores mean F1 {_pct(r['mean_f1'], False)} "
             f"[{_pct(r['mean_f1_ci'][0], False)}, {_pct(r['mean_f1_ci'][1], False)}] and mean "
             f"AUC {_pct(r['mean_auc'], False)} [{_pct(r['mean_auc_ci'][0], False)}, "
             f"{_pct(r['mean_auc_ci'][1], False)}] ×100 over {len(r['runs'])} seeds and "
             f"{', '.join(map(str, sub.values()))} test subjects. Intervals: a hierarchical "
             f"bootstrap ({main_r['resamples']} resamples of test subjects and seeds, paired by "
             f"seed); p Holm-adjusted over the {main_r.get('holm_family', '?')} contrasts of "
             "this report (F1, AUC and map scores of every arm).")
    parts = [intro, "", *head, *body]
    if a.unseen and a.unseen.is_file():
        parts += ["", a.unseen.read_text().strip()]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(parts) + "\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
