"""PNG plots of a fold: ``curves.png`` (train/val loss and validation F1 per epoch, from
history.csv) and ``per_au_f1.png`` (test F1 per AU against the all-positive baseline)."""

from __future__ import annotations

import csv
from pathlib import Path

from hiva.runs import CURVES, HISTORY, PER_AU_PLOT


def plot_fold(folder: str | Path, result: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    written = []
    hist = folder / HISTORY
    if hist.exists():
        with open(hist, newline="") as f:
            rows = list(csv.DictReader(f))
        ep = [int(r["epoch"]) for r in rows]

        def col(name):
            return [float(r[name]) if r.get(name) not in (None, "") else float("nan")
                    for r in rows]

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        a1.plot(ep, col("train_loss"), "o-", label="train")
        if "val_loss" in rows[0]:
            a1.plot(ep, col("val_loss"), "s-", label="validation")
        a1.set_xlabel("epoch")
        a1.set_ylabel("loss")
        a1.set_title("loss")
        a1.legend()
        if "val_mean_f1" in rows[0]:
            a2.plot(ep, [100 * v for v in col("val_mean_f1")], "o-", color="C2",
                    label="validation mean F1")
            best = result.get("best_epoch")
            if best:
                a2.axvline(best, color="grey", ls="--", label=f"picked epoch {best}")
        base = result["test"]["mean_baseline_f1"]
        a2.axhline(100 * base, color="C3", ls=":", label="all-positive (test)")
        a2.set_xlabel("epoch")
        a2.set_ylabel("mean F1 ×100")
        a2.set_title("validation F1")
        a2.legend(fontsize=8)
        from matplotlib.ticker import MaxNLocator

        for a in (a1, a2):
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(f"fold {result['fold']}")
        fig.tight_layout()
        p = folder / CURVES
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    written.append(plot_per_au(result["test"], folder / PER_AU_PLOT,
                               f"fold {result['fold']} test"))
    return written


def plot_per_au(metrics: dict, path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    aus = metrics["aus"]
    x = np.arange(len(aus))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(aus) + 2), 3.8))
    ax.bar(x - 0.2, [100 * v for v in metrics["f1"]], 0.4, label="HiVA")
    ax.bar(x + 0.2, [100 * v for v in metrics["baseline_f1"]], 0.4, label="all-positive",
           color="C3", alpha=0.6)
    for i, v in enumerate(metrics["f1"]):
        if v != v:  # no positive test label: F1 undefined, not 0 (left out of the mean)
            ax.text(x[i], 2, "n/a", ha="center", va="bottom", fontsize=9, color="0.3")
    ax.set_xticks(x, [f"AU{a}" for a in aus])
    ax.set_ylabel("F1 ×100")
    ax.set_ylim(0, 100)
    undefined = metrics.get("undefined_f1") or []
    note = (f"\nn/a: no positive test label, F1 undefined ({len(undefined)} AU left out of "
            "the mean)" if undefined else "")
    ax.set_title(f"{title}: mean F1 {100 * metrics['mean_f1']:.1f} "
                 f"(all-positive {100 * metrics['mean_baseline_f1']:.1f}){note}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
