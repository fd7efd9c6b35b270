"""The Slurm launcher of ``hiva sweep``: the shard's runs as one submitit job array (each job
runs the same ``hiva train`` subprocess as the local launcher, under torchrun when
``gpus_per_node`` > 1), then waiting and reporting like the local one. submitit is imported only
here."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from hiva.errors import HivaError
from hiva.runs import SWEEP_RUN_LOG
from hiva.train.executor import Tally, execute_run, is_busy, run_spec, write_run_config
from hiva.train.sweep import Run, Sweep, _where


def _executor(sweep: Sweep):
    """A submitit executor for the sweep's ``slurm`` section (``HIVA_SUBMITIT_CLUSTER=local``:
    submitit's local executor)."""
    import shutil

    try:
        import submitit
    except ImportError:
        raise HivaError("--launcher slurm needs submitit; pip install submitit") from None
    cluster = os.environ.get("HIVA_SUBMITIT_CLUSTER") or "slurm"
    s = sweep.slurm
    if cluster == "slurm":
        if shutil.which("sbatch") is None:
            raise HivaError("--launcher slurm: sbatch is not found on this machine; run hiva "
                            "sweep on a Slurm login node, or use --launcher local")
        if "time" not in s:
            raise HivaError(f"{_where(sweep.path)}: --launcher slurm needs slurm.time (the job "
                            "time limit, minutes or D-HH:MM:SS); add e.g. `time: 240` under slurm")
    ex = submitit.AutoExecutor(folder=Path(sweep.root) / ".submitit", cluster=cluster)
    params = dict(name="hiva-sweep", nodes=1, tasks_per_node=1,
                  timeout_min=s.get("time", 24 * 60), gpus_per_node=s.get("gpus_per_node"),
                  cpus_per_task=s.get("cpus_per_task"), mem_gb=s.get("mem_gb"))
    for k in ("partition", "array_parallelism", "account", "qos", "constraint", "setup"):
        if k in s:
            params[f"slurm_{k}"] = s[k]
    ex.update_parameters(**params)
    return ex


def run_slurm(sweep: Sweep, runs: list[Run], tally: Tally) -> None:
    """Submit ``runs`` as one submitit job array (each job: ``executor.execute_run``), then wait
    and count each result into ``tally`` as it ends."""
    nproc = int(sweep.slurm.get("gpus_per_node") or 1)
    ex = _executor(sweep)
    specs, order = [], []
    for run in runs:
        if is_busy(Path(run.config.out)):
            tally.add({"id": run.id, "status": "busy", "seconds": 0.0,
                       "reason": "another process trains it", "log": ""})
            continue
        specs.append(run_spec(run, write_run_config(run), nproc))
        order.append(run)
    if not specs:
        return
    try:
        jobs = ex.map_array(execute_run, specs)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise HivaError(f"submitting {len(specs)} run(s) failed: {first}; check the slurm "
                        "section of the sweep file") from None
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    print(f"submitted {len(jobs)} run(s) as job array {', '.join(ids)} (submitit folder "
          f"{Path(sweep.root) / '.submitit'}); waiting", flush=True)
    tally.parallel = min(len(jobs), int(sweep.slurm.get("array_parallelism") or len(jobs)))
    pending = dict(zip(range(len(jobs)), zip(jobs, order)))
    poll = 0.5 if os.environ.get("HIVA_SUBMITIT_CLUSTER", "slurm") != "slurm" else 15.0
    try:
        while pending:
            for i, (job, run) in list(pending.items()):
                if not job.done():
                    continue
                del pending[i]
                try:
                    res = job.result()
                except Exception as e:
                    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                    log = Path(run.config.out) / SWEEP_RUN_LOG
                    res = {"id": run.id, "status": "failed", "seconds": 0.0,
                           "reason": f"job {job.job_id}: {(lines or ['failed'])[-1][:300]}",
                           "log": str(log if log.exists() else job.paths.stderr)}
                tally.add(res)
            if pending:
                time.sleep(poll)
    except KeyboardInterrupt:
        print(f"interrupted: the jobs {', '.join(ids)} keep running on the cluster; rerun the "
              "same command to wait for them", file=sys.stderr, flush=True)
        raise
