"""The faithfulness checks of a sweep's activation maps (``hiva.train.faithfulness``) per arm:
the rank correlation of each trained model's maps with those of the same architecture with fresh
random weights, and the deletion curve (the AU's probability drop when its top-k map cells are
greyed out, against k random cells). Writes each run's ``fold1/faithfulness.json`` (reused when
present) and a Markdown table.

    python benchmarks/faithfulness.py out/maps --arms none_stride32 none bias kl \
        --frames 64 --markdown out/maps/faithfulness.md

Means over the arm's seeds (the per-seed values in brackets for the correlation). On 2 CPU cores
with the demo model, about 1 min per run at 64 frames (each AU and k is one more forward pass).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from emit import emit


def main() -> None:
    from hiva.train.faithfulness import faithfulness
    from hiva.train.report import read_sweep

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--arms", nargs="+", required=True)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--redo", action="store_true", help="Recompute existing faithfulness.json.")
    a = ap.parse_args()
    ks = tuple(a.ks)
    head = " | ".join(f"k={k}: top / random" for k in ks)
    lines = [f"Activation-map faithfulness on {a.frames} test frames per run (fold 1): Spearman "
             "correlation of each map with the same architecture's under fresh random weights "
             "(0 = unrelated, 1 = the same ranking), and the drop in the AU's probability ×100 "
             "when the k cells its map weights most are greyed out vs k random cells (frames "
             "with the AU present; mean over seeds)", "",
             f"| arm | seeds | rank corr. with random weights (per seed) | {head} |",
             "|---|---|---|" + "---|" * len(ks)]
    finished, _ = read_sweep(a.root)  # {group: [(run id, folder)]}; an arm at 100% is its name
    for arm in a.arms:
        res = []
        for _, d in finished.get(arm, []):
            f = d / "fold1" / "faithfulness.json"
            if f.is_file() and not a.redo:
                r = json.loads(f.read_text())
                if r["deletion"]["k"] == list(ks) and r["frames"] >= min(a.frames, 1):
                    res.append(r)
                    continue
            print(f"{arm}: {d.name} ...", flush=True)
            res.append(faithfulness(d, fold=1, frames=a.frames, ks=ks))
        if not res:
            print(f"{arm}: no finished run; skipped")
            continue
        corr = [r["randomised_rank_correlation"]["mean"] for r in res]
        cells = []
        for j in range(len(ks)):
            top = np.mean([r["deletion"]["top_drop"][j] for r in res])
            rnd = np.mean([r["deletion"]["random_drop"][j] for r in res])
            cells.append(f"{100 * top:.1f} / {100 * rnd:.1f}")
        lines.append(f"| {arm} | {len(res)} | {np.mean(corr):.2f} "
                     f"({' / '.join(f'{c:.2f}' for c in corr)}) | " + " | ".join(cells) + " |")
    emit("\n".join(lines), a.markdown)


if __name__ == "__main__":
    main()
