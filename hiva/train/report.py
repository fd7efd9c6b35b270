"""``hiva report RUN_DIR...``: the test F1 of several runs side by side (per AU and the mean
over folds), read from each run's ``metrics.json``; optionally written as Markdown/JSON."""

from __future__ import annotations

import json
from pathlib import Path

from hiva.errors import HivaError
from hiva.train.metrics import format_table


def load_summary(run_dir: str | Path) -> dict:
    p = Path(run_dir) / "metrics.json"
    if not p.is_file():
        raise HivaError(f"{run_dir} has no metrics.json; finish `hiva train --out {run_dir}` "
                        "first")
    return json.loads(p.read_text())


def report(run_dirs, names=None, baseline: bool = True) -> tuple[str, dict]:
    """(text table, {name: mean metrics}) for ``run_dirs``; the AUs are the union, a run that
    lacks an AU shows '-'."""
    if not run_dirs:
        raise HivaError("pass at least one run folder: hiva report RUN_DIR [RUN_DIR...]")
    names = list(names) if names else [Path(r).name for r in run_dirs]
    if len(names) != len(run_dirs):
        raise HivaError("give one --name per run folder")
    means = {n: load_summary(r)["mean"] for n, r in zip(names, run_dirs)}
    aus = sorted({a for m in means.values() for a in m["aus"]})
    cols = {}
    for n, m in means.items():
        pos = {a: i for i, a in enumerate(m["aus"])}
        cols[n] = {"f1": [m["f1"][pos[a]] if a in pos else float("nan") for a in aus],
                   "mean_f1": m["mean_f1"], "mean_auc": m.get("mean_auc"),
                   "mean_accuracy": m.get("mean_accuracy")}
    if baseline:
        first = next(iter(means.values()))
        pos = {a: i for i, a in enumerate(first["aus"])}
        cols["all-pos"] = {"f1": [first["baseline_f1"][pos[a]] if a in pos else float("nan")
                                  for a in aus], "mean_f1": first["mean_baseline_f1"]}
    for c in cols.values():  # NaN → shown as '-'
        c["f1"] = [None if v != v else v for v in c["f1"]]
    text = _table(cols, aus)
    return text, means


def _table(cols: dict, aus) -> str:
    fixed = {n: dict(c, f1=[float("nan") if v is None else v for v in c["f1"]])
             for n, c in cols.items()}
    t = format_table(fixed, aus, "Test F1 ×100, mean over folds (all-pos: first run's folds)")
    return t.replace("nan", "  -")


def to_markdown(text: str) -> str:
    lines = [ln for ln in text.splitlines()[1:]]
    rows = [ln.split() for ln in lines]
    out = ["| " + " | ".join(["AU", *rows[0][1:]]) + " |",
           "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)
