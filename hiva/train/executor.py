"""Executing a sweep's runs: one run's config file, lock and ``hiva train`` subprocess and why it
failed (``execute_run``), and the runs as the jobs (``run_specs``) that the shared launchers
(``hiva.jobs``: local, or a Slurm job array) run, each through the same ``execute_run``.
Imports neither torch nor numpy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hiva.config import config_dict
from hiva.jobs.process import is_locked, run_locked
from hiva.jobs.tally import Tally, trouble
from hiva.runs import METRICS, SWEEP_LOCK, SWEEP_RUN_CONFIG, SWEEP_RUN_LOG, is_finished
from hiva.runtime import write_text_atomic
from hiva.train.sweep import Run


def write_run_config(run: Run) -> Path:
    import yaml

    d = Path(run.config.out)
    d.mkdir(parents=True, exist_ok=True)
    p = d / SWEEP_RUN_CONFIG
    write_text_atomic(p, yaml.safe_dump(config_dict(run.config), sort_keys=False))
    return p


# --------------------------------------------------------------------------- one run
def is_busy(d: Path) -> bool:
    """Whether another process holds the run's lock now (dry-run and submission check)."""
    return is_locked(d / SWEEP_LOCK)


def train_command(config: str, nproc: int = 1) -> list[str]:
    train = ["-m", "hiva.cli", "train", "--config", str(config)]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", str(nproc), *train]
    return [sys.executable, *train]


def execute_run(spec: dict) -> dict:
    """Train one run in a subprocess (``spec``: id, dir, config, cwd, nproc, lock_wait_s), its
    output appended to ``dir/train.log``, holding ``dir/.sweep.lock`` meanwhile. Returns
    {id, status: finished|failed|skipped|busy, reason, seconds, log}. Module level: submitit
    pickles it into Slurm jobs."""
    d = Path(spec["dir"])
    log = d / SWEEP_RUN_LOG
    if is_finished(d):
        return {"id": spec["id"], "log": str(log), "reason": "already finished", "seconds": 0.0,
                "status": "skipped"}
    res = run_locked(spec["id"], train_command(spec["config"], int(spec.get("nproc", 1))), log,
                     "hiva sweep", lock_file=d / SWEEP_LOCK,
                     lock_wait_s=float(spec.get("lock_wait_s", 5.0)), cwd=spec.get("cwd"),
                     done=lambda: is_finished(d))
    if res["status"] == "finished" and not is_finished(d):
        return {**res, "status": "failed", "reason": f"exited 0 without writing {METRICS}"}
    return res


# --------------------------------------------------------------------------- the sweep
def run_spec(run: Run, config: Path, nproc: int = 1) -> dict:
    """What ``execute_run`` needs of a run, as plain data (a Slurm job receives it pickled)."""
    d = Path(run.config.out).absolute()
    return {"id": run.id, "dir": str(d), "config": str(config.absolute()), "cwd": os.getcwd(),
            "nproc": nproc, "log": str(d / SWEEP_RUN_LOG), "lock": str(d / SWEEP_LOCK)}


def run_specs(runs: list[Run], tally: Tally, nproc: int = 1) -> list[dict]:
    """Each run's config file written and its spec; a run whose config cannot be written (e.g. a
    disk error) is counted failed in ``tally`` instead."""
    specs = []
    for run in runs:
        try:
            specs.append(run_spec(run, write_run_config(run), nproc))
        except Exception as e:
            tally.add(trouble(run.id, e, Path(run.config.out) / SWEEP_RUN_LOG))
    return specs
