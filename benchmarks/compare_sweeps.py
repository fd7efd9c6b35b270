"""Paired subject-bootstrap comparison of arms that live in different sweep folders (``hiva
report`` compares the arms of one sweep; a follow-up sweep on the same data, seeds and folds gets
its own folder). Each group is NAME=ARM_DIR, the folder holding ``seed0``, ``seed1``, ...; runs of
the same seed see the same test subjects, so the differences are paired.

    python benchmarks/compare_sweeps.py --reference corpus \
        learned=out/language/learned corpus=out/language/corpus \
        corpus_centred=out/language-centred/corpus_centred [--suffix labels5]

Prints a Markdown table (mean F1 ×100 over seeds, 95% CI, Δ vs the reference with its CI and
bootstrap p, each seed's own mean F1) and writes it to ``--markdown`` when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hiva.train.bootstrap import compare, load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("groups", nargs="+", help="NAME=ARM_DIR")
    ap.add_argument("--reference", required=True)
    ap.add_argument("--suffix", default="", help="Run folder under each seed, e.g. labels5.")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    groups = {}
    for spec in a.groups:
        name, _, folder = spec.partition("=")
        seeds = sorted(Path(folder).glob("seed*"), key=lambda p: int(p.name[4:]))
        dirs = [s / a.suffix if a.suffix else s for s in seeds]
        groups[name] = [load_run(d, f"{name}/{d.relative_to(folder)}") for d in dirs
                        if (d / "metrics.json").is_file()]
    s = compare(groups, a.reference, a.resamples, 0).summary()

    def pct(x):
        return f"{100 * x:.1f}"

    lines = [f"| arm{' (' + a.suffix + ')' if a.suffix else ''} | runs | mean F1 [95% CI] | "
             f"Δ vs {a.reference} [95% CI] | p | per seed |", "|---|---|---|---|---|---|"]
    for g in s["groups"]:
        lo, hi = g["mean_f1_ci"]
        if g["name"] == a.reference:
            delta, p = "reference", ""
        else:
            dl, dh = g["delta_ci"]
            delta = f"{100 * g['delta']:+.1f} [{100 * dl:+.1f}, {100 * dh:+.1f}]"
            p = "<0.001" if g["p"] < 0.001 else f"{g['p']:.3f}"
        per = " / ".join(pct(v) for v in g["run_mean_f1"].values())
        lines.append(f"| {g['name']} | {len(g['runs'])} | {pct(g['mean_f1'])} [{pct(lo)}, "
                     f"{pct(hi)}] | {delta} | {p} | {per} |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        a.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
