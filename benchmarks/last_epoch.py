"""A sweep re-scored at its last epoch: every finished run's ``last.safetensors`` evaluated on its
test subjects (``hiva evaluate --weights last``), gathered into a mirror of the sweep folder that
``hiva report`` reads like the original. It tests one shortcut of a budget with few validation
subjects: the epoch picked on one validation subject may be a degenerate early one (epoch 1
predicting nearly every AU present scores a fair F1 there), and which arm draws such a pick is
luck. Scoring every run at its last epoch removes the choice (as at budgets with no validation
subject at all).

    python benchmarks/last_epoch.py out/lang/curve --out out/lang/curve_last
    hiva report out/lang/curve_last --only "*_s4" --reference shuffled_s4

Resumes: a run already evaluated is not evaluated again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

RUN_FILES = ("metrics.json", "config.yaml", "sweep_run.yaml")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default="", help="a substring every scored arm's name holds")
    a = ap.parse_args()
    plan = json.loads((a.root / "sweep.json").read_text())
    hiva = Path(sys.executable).with_name("hiva")
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(a.root / "sweep.json", a.out / "sweep.json")
    done = 0
    for run in plan["runs"]:
        src = a.root / run["dir"]
        if a.only not in run["dir"] or not (src / "metrics.json").is_file():
            continue
        folds = sorted(json.loads((src / "metrics.json").read_text())["folds"])
        dst = a.out / run["dir"]
        for k in folds:
            scored = src / f"fold{k}" / "evaluate_last_predictions.parquet"
            if not scored.is_file():
                subprocess.run([str(hiva), "evaluate", "--checkpoint", str(src), "--fold", k,
                                "--weights", "last", "--out", str(src / f"fold{k}")],
                               check=True, stdout=subprocess.DEVNULL)
            (dst / f"fold{k}").mkdir(parents=True, exist_ok=True)
            shutil.copy(scored, dst / f"fold{k}" / "test_predictions.parquet")
            shutil.copy(src / f"fold{k}" / "metrics.json", dst / f"fold{k}" / "metrics.json")
        for f in RUN_FILES:
            if (src / f).is_file():
                shutil.copy(src / f, dst / f)
        done += 1
        print(f"{run['dir']}: last epoch scored", flush=True)
    print(f"{done} runs re-scored at their last epoch into {a.out}")


if __name__ == "__main__":
    main()
