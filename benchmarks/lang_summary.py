"""The summary table of "does language help?" (docs/results/language.md; issue 29, ``make
language``): every contrast of the language sweeps that the verdict rests on, with Δ mean AUC
and Δ mean F1, 95% hierarchical intervals (test subjects and seeds, paired by seed) and p
Holm-adjusted over the table's rows (AUC and F1 each one family). The declared primary contrasts
are marked. The zero-shot rows come from benchmarks/zero_shot_all.py's JSON (its own pooled
bootstrap).

    python benchmarks/lang_summary.py out/lang --out out/lang/summary.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_summary import _ci, _p, _raw
from bench_summary import _pct as _f

# What A − B asks, per kind of contrast (budget added per row).
ASKS = {
    "shuffled": "right descriptions vs the same on the wrong AUs",
    "shuffled_last": "the same, every run at its last epoch (no epoch choice)",
    "neighbour": "vs the nearest other AU's descriptions",
    "random_cov": "vs random rows with the corpus's covariance",
    "learned": "vs free per-AU vectors (no language)",
    "names": "the AU's name vs shuffled descriptions",
    "white": "whitened bank: right vs wrong AUs",
    "regions": "KL prior where the descriptions say vs where another AU's say",
    "facs": "descriptions' regions vs the FACS table's",
    "none": "descriptions' regions vs no prior",
    "facs_none": "the FACS table's regions vs no prior",
}
BUDGETS = {"s1": "1 subject", "s2": "2 subjects", "s4": "4 subjects", "s8": "8 subjects",
           "all": "all subjects"}


def _budget(arm: str) -> str:
    return BUDGETS.get(arm.rsplit("_", 1)[-1], "full labels")


def _rows() -> list[tuple[str, str, str, str, bool]]:
    """(sweep folder under ROOT, A, B, what A − B asks, primary?) in table order."""
    out = []
    for b in ("_s1", "_s2"):
        out.append(("small", f"corpus{b}", f"shuffled{b}", "shuffled", True))
    for kind in ("neighbour", "random_cov", "learned"):
        out += [("small", f"corpus{b}", f"{kind}{b}", kind, False) for b in ("_s1", "_s2")]
    out += [("small", f"names{b}", f"shuffled{b}", "names", False) for b in ("_s1", "_s2")]
    out += [("curve", f"corpus{b}", f"shuffled{b}", "shuffled", False) for b in ("_s4", "_s8")]
    out += [("curve_last", f"corpus{b}", f"shuffled{b}", "shuffled_last", False)
            for b in ("_s4", "_s8")]
    out += [("curve", f"names{b}", f"shuffled{b}", "names", False) for b in ("_s4", "_s8")]
    out += [("white", f"corpus_white{b}", f"shuffled_white{b}", "white", False)
            for b in ("_s1", "_s2")]
    for sweep, b in (("regions", "_s1"), ("regions_s2", "_s2")):
        out.append((sweep, f"kl_corpus{b}", f"kl_shuffled{b}", "regions", True))
        out += [(sweep, f"kl_corpus{b}", f"kl_facs{b}", "facs", False),
                (sweep, f"kl_corpus{b}", f"none{b}", "none", False),
                (sweep, f"kl_facs{b}", f"none{b}", "facs_none", False)]
    return [(sw, x, y, f"{_budget(x)}: {ASKS[k]}", pr) for sw, x, y, k, pr in out]


# The zero-shot rows: (benchmarks/zero_shot_all.py JSON under ROOT, mode, reference, what it
# asks, primary?).
ZERO_SHOT = [
    ("zero_shot", "corpus", "shuffled", "zero-shot, every AU: right descriptions vs shuffled",
     True),
    ("zero_shot", "neighbour", "shuffled",
     "zero-shot, every AU: nearest other AU's vs shuffled", False),
    ("zs_regions", "kl_corpus", "kl_shuffled", "zero-shot, every AU, KL prior on the parts its "
     "own descriptions name vs another AU's", True),
    ("zs_regions", "kl_facs", "kl_shuffled", "zero-shot, every AU, KL prior on the FACS table's "
     "regions vs another AU's description parts", False),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resamples", type=int, default=2000)
    a = ap.parse_args()
    from hiva.train.boot_stats import holm
    from hiva.train.report import sweep_comparison

    comps, got = {}, []
    for sweep, x, y, what, primary in _rows():
        root = a.root / sweep
        if not (root / "sweep.json").is_file():
            continue
        if sweep not in comps:
            comps[sweep] = sweep_comparison(root, None, a.resamples, 0)[0]
        comp = comps[sweep]
        if x in comp.groups and y in comp.groups:
            got.append((what, primary, comp.contrast(x, y)))
    zrows = []
    for sweep, m, ref, what, primary in ZERO_SHOT:
        zs = a.root / sweep / "all.json"
        modes = json.loads(zs.read_text())["modes"] if zs.is_file() else {}
        if m in modes and ref in modes and "delta_auc" in modes[m]:
            zrows.append((what, primary, m, ref, modes[m], modes[ref]))
    raw_auc = [c["p_auc"] for _, _, c in got] + [z["p"] for *_, z, _ in zrows]
    raw_f1 = [c["p"] for _, _, c in got]

    def floor(ps):
        return [2 / a.resamples if p == 0 else p for p in ps]

    p_auc, p_f1 = holm(floor(raw_auc)), holm(floor(raw_f1))
    lines = ["| contrast (A − B) | what it asks | seeds | Δ mean AUC [95% CI] | p | p (Holm) | "
             "Δ mean F1 [95% CI] | p (Holm) |", "|---|---|---|---|---|---|---|---|"]
    for i, (what, primary, c) in enumerate(got):
        name = f"**{c['a']} − {c['b']}** (primary)" if primary else f"{c['a']} − {c['b']}"
        lines.append(f"| {name} | {what} | {min(c['runs'])} | "
                     f"{_ci(c['delta_auc'], c['delta_auc_ci'])} | "
                     f"{_raw(raw_auc[i], a.resamples)} | {_p(p_auc[i], raw_auc[i])} | "
                     f"{_ci(c['delta'], c['delta_ci'])} | {_p(p_f1[i], raw_f1[i])} |")
    for j, (what, primary, m, r, z, ref) in enumerate(zrows):
        name = f"**{m} − {r}** (primary)" if primary else f"{m} − {r}"
        lines.append(f"| {name} | {what} (AU mean {_f(z['mean_auc'], False)} vs "
                     f"{_f(ref['mean_auc'], False)}) | {z['seeds']} | "
                     f"{_ci(z['delta_auc'], z['delta_auc_ci'])} | "
                     f"{_raw(raw_auc[len(got) + j], a.resamples)} | "
                     f"{_p(p_auc[len(got) + j], raw_auc[len(got) + j])} | "
                     "— | |")
    n_auc, n_f1 = len(got) + len(zrows), len(got)
    lines += ["", f"Confirmatory set, heads-only, ×100. Intervals: hierarchical bootstrap "
              f"({a.resamples} resamples of test subjects and seeds, paired by seed); p: the "
              f"bootstrap p of each contrast; p (Holm): adjusted over this table ({n_auc} AUC "
              f"rows, {n_f1} F1 rows). AUC is the primary number at the small budgets (no "
              "threshold; at 1 and 2 subjects there is no validation subject, so F1 is at 0.5 "
              "on the last epoch). (primary): declared in its sweep file before running."]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
