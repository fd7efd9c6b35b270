"""Carrying out a sweep's plan (``hiva.train.sweep`` makes it): each run's state, the plan file,
and ``run_sweep``, what ``hiva sweep`` calls, handing the runs (``hiva.train.executor``) to the
shared local or Slurm (submitit) launcher (``hiva.jobs``). Imports neither torch nor numpy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hiva.config import config_dict
from hiva.errors import HivaError
from hiva.jobs.launch import check_launcher, launch
from hiva.jobs.slurm import SlurmTarget, check_slurm
from hiva.jobs.tally import Tally
from hiva.runs import SWEEP_PLAN, SWEEP_RUN_CONFIG, has_begun, is_finished
from hiva.runtime import require_dir_path, writable_dir, write_text_atomic
from hiva.train.executor import execute_run, is_busy, run_specs
from hiva.train.sweep import (
    FREE_KEYS,
    Run,
    Sweep,
    _flat,
    _where,
    check_shards,
    load_sweep,
    shard_of,
    shard_runs,
)


def run_state(root: Path, run: Run) -> str:
    """finished (its metrics.json exists), partial (training started) or new."""
    d = Path(root) / run.dir
    if is_finished(d):
        return "finished"
    if has_begun(d):
        return "partial"
    return "new"


def check_root(sweep: Sweep) -> dict | None:
    """The existing ``ROOT/sweep.json`` (None if none); refused when its plan differs."""
    root = require_dir_path(sweep.root, "--out")
    f = root / SWEEP_PLAN
    if not f.exists():
        return None
    try:
        old = json.loads(f.read_text())
        old_runs = old["runs"]
    except (ValueError, KeyError, TypeError):
        raise HivaError(f"{f} is not a sweep plan; use another --out") from None
    keys = ("id", "arm", "seed", "label_fraction", "dir", "config_hash")
    new = {r["id"]: r for r in sweep.plan()["runs"]}
    had = {r.get("id"): r for r in old_runs}
    if old.get("version") == 1 and list(had) == list(new) and all(
            all(had[i].get(k) == new[i][k] for k in keys) for i in new):
        return old
    added = [i for i in new if i not in had]
    gone = [i for i in had if i not in new]
    changed = [i for i in new if i in had and any(had[i].get(k) != new[i][k] for k in keys)]
    parts = [f"{what}: {', '.join(map(str, ids[:3]))}{' …' if len(ids) > 3 else ''}"
             for what, ids in (("new runs", added), ("runs not in this sweep", gone),
                               ("other settings", changed)) if ids]
    if changed:
        keys_differ = _differing_keys(root, next(r for r in sweep.runs if r.id == changed[0]))
        if keys_differ:
            parts[-1] += f" (e.g. {changed[0]}: {', '.join(keys_differ[:5])})"
    if not parts:
        parts = ["another run order"]
    raise HivaError(f"{root} holds another sweep plan ({'; '.join(parts)}); use another --out, "
                    "or the same sweep file and --set values")


def _differing_keys(root: Path, run: Run) -> list[str]:
    """Config keys (dotted inside ``model``) where ``run`` differs from the config its folder
    was last given (``sweep_run.yaml``); [] when there is none to compare."""
    import yaml

    try:
        old = yaml.safe_load((root / run.dir / SWEEP_RUN_CONFIG).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []

    a, b = _flat(old), _flat(config_dict(run.config))  # keys on one side only: a hiva update
    return sorted(k for k in set(a) & set(b) if k not in FREE_KEYS and a[k] != b[k])


def write_plan(sweep: Sweep) -> None:
    """Create ROOT and write ``sweep.json`` unless the same plan is there (every shard writes the
    same bytes, atomically, so shards need no coordination). The same runs with another
    ``primary`` contrast (e.g. one added to the sweep file later) rewrite it."""
    old = check_root(sweep)
    root = writable_dir(sweep.root, "--out")
    if old is None or old.get("primary") != sweep.primary:
        write_text_atomic(root / SWEEP_PLAN, json.dumps(sweep.plan(), indent=2) + "\n")


def run_sweep(path: str | Path, root: str | Path, *, dry_run: bool = False,
              num_shards: int = 1, shard_index: int = 0, launcher: str = "local",
              sets: list[str] | None = None) -> int:
    """``hiva sweep``: validate, print or run this shard's part of the plan; the exit code."""
    check_shards(num_shards, shard_index)
    check_launcher(launcher)
    sweep = load_sweep(path, root, sets)
    mine = shard_runs(sweep.runs, num_shards, shard_index)
    shard_txt = f"shard {shard_index} of {num_shards}"
    if dry_run:
        check_root(sweep)
        width = max(len(r.id) for r in sweep.runs)
        for r in sweep.runs:
            state = run_state(sweep.root, r)
            if state == "partial" and is_busy(Path(sweep.root) / r.dir):
                state = "running"
            s = shard_of(r.index, num_shards)
            mark = "" if s == shard_index else "  (other shard)"
            print(f"{r.id:<{width}}  {state:<8}  shard {s}{mark}", flush=True)
        print(f"dry run: {len(sweep.runs)} runs in the plan, {len(mine)} in {shard_txt}; "
              "nothing was run", flush=True)
        return 0
    slurm = None
    if launcher == "slurm":
        slurm = SlurmTarget(folder=Path(sweep.root) / ".submitit", name="hiva-sweep",
                            command="hiva sweep", where=_where(sweep.path),
                            add_time="add e.g. `time: 240` under slurm",
                            check="the slurm section of the sweep file", settings=sweep.slurm)
        check_slurm(slurm)
    write_plan(sweep)
    states = {r.id: run_state(sweep.root, r) for r in mine}
    counts = {s: sum(v == s for v in states.values()) for s in ("finished", "partial", "new")}
    runs_txt = f"{len(sweep.runs)} run{'s' if len(sweep.runs) != 1 else ''}"
    print(f"sweep {sweep.path} → {sweep.root}: {runs_txt}, {len(mine)} in "
          f"{shard_txt} (finished {counts['finished']}, partial {counts['partial']}, new "
          f"{counts['new']}); launcher {launcher}", flush=True)
    todo = [r for r in mine if states[r.id] != "finished"]
    tally = Tally(len(todo))
    tally.counts["skipped"] = counts["finished"]
    try:
        nproc = int(sweep.slurm.get("gpus_per_node") or 1) if slurm else 1
        launch(execute_run, run_specs(todo, tally, nproc), tally, launcher, slurm=slurm)
    except KeyboardInterrupt:
        tally.summary(f"sweep {shard_txt} interrupted")
        print("rerun the same command to resume: finished runs are skipped, partial ones "
              "continue from their last epoch", file=sys.stderr, flush=True)
        return 130
    return tally.summary(f"sweep {shard_txt}")
