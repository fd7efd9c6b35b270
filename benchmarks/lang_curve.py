"""The label curve (issue 29): mean test AUC (and F1) of each text arm against the number of
labelled training subjects, from ``hiva report --json`` files whose groups are named
``MODE_BUDGET`` (``corpus_s1``, ``shuffled_s8``, ``corpus_all`` …; ``make language`` writes one
report per budget). A budget's subject count is read from the runs' ``label_budget`` (validation
subjects counted), so ``all`` sits at the whole training pool.

    python benchmarks/lang_curve.py out/lang/small/report_s1.json out/lang/small/report_s2.json \
        out/lang/curve/report_s4.json --plot docs/results/lang_curve.png \
        --markdown out/lang/curve/curve.md

Prints a table (rows: modes; columns: budgets; cells: mean AUC ×100 [95% CI] from each report's
hierarchical bootstrap) and, with ``--plot``, draws the curve with its intervals.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emit import emit


def subjects(group: dict) -> int:
    """Labelled subjects of a group's runs, validation included."""
    b = group.get("label_budget") or {}
    if b.get("labelled_subjects"):
        return int(b["labelled_subjects"])
    return int(b.get("train_subjects", 0)) + int(b.get("val_subjects", 0))


def points(reports: list[dict]) -> dict[str, dict[int, dict]]:
    """{mode: {labelled subjects: group}} over every report's groups named MODE_BUDGET."""
    out: dict = {}
    for r in reports:
        for g in r["groups"]:
            if "_" not in g["name"]:
                continue
            mode = g["name"].rsplit("_", 1)[0]
            out.setdefault(mode, {})[subjects(g)] = g
    return out


def _cell(v: float, ci: list[float]) -> str:
    return f"{100 * v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def table(pts: dict, metric: str) -> str:
    budgets = sorted({n for m in pts.values() for n in m})
    head = "| text | " + " | ".join(f"{n} subj." for n in budgets) + " |"
    lines = [head, "|---" * (len(budgets) + 1) + "|"]
    for mode, by in pts.items():
        cells = [_cell(by[n][f"mean_{metric}"], by[n][f"mean_{metric}_ci"]) if n in by else ""
                 for n in budgets]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(pts: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (mode, by) in enumerate(pts.items()):
        ns = sorted(by)
        y = [100 * by[n]["mean_auc"] for n in ns]
        lo = [100 * by[n]["mean_auc_ci"][0] for n in ns]
        hi = [100 * by[n]["mean_auc_ci"][1] for n in ns]
        x = [n * (1 + 0.02 * (i - len(pts) / 2)) for n in ns]  # dodge, on the log axis
        ax.errorbar(x, y, yerr=[[a - b for a, b in zip(y, lo)], [b - a for a, b in zip(y, hi)]],
                    marker="o", ms=4, capsize=2, lw=1.2, label=mode)
    ax.set_xscale("log", base=2)
    budgets = sorted({n for m in pts.values() for n in m})
    ax.set_xticks(budgets, [str(n) for n in budgets])
    ax.set_xlabel("labelled training subjects (validation counted)")
    ax.set_ylabel("mean test AUC ×100 (95% CI)")
    ax.set_title("The label curve: confirmatory set, heads-only, 8 seeds, last epoch",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    pts = points([json.loads(p.read_text()) for p in a.reports])
    text = ("Mean test AUC ×100 [95% CI] by labelled training subjects (validation counted):\n\n"
            + table(pts, "auc") + "\n\nMean test F1 ×100 [95% CI] at threshold 0.5:\n\n"
            + table(pts, "f1") + "\n\nConfirmatory set, heads-only, 8 seeds per cell, each run "
            "scored at the epoch its report holds (`make language`: the last); intervals from "
            "each budget's hierarchical bootstrap (test subjects and seeds).")
    emit(text, a.markdown)
    if a.plot:
        plot(pts, a.plot)


if __name__ == "__main__":
    main()
