"""The Slurm launcher: the jobs as one submitit job array, then waiting and counting each result
into the tally as it ends, like the local launcher. ``HIVA_SUBMITIT_CLUSTER=local`` runs it
through submitit's local executor (tests, trials on a workstation). submitit is imported only
inside these functions."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hiva.errors import HivaError
from hiva.jobs.process import is_locked
from hiva.jobs.tally import Tally


@dataclass(frozen=True)
class SlurmTarget:
    """Where and how to submit: the checked ``slurm`` settings (``hiva.jobs.settings``),
    submitit's folder, the job name, and for messages: the command (``hiva sweep``), where the
    settings come from (``sweep file X``, ``--slurm``), how to add a time limit, and what to
    check when submission fails."""

    folder: Path
    name: str
    command: str
    where: str
    add_time: str
    check: str
    settings: dict = field(default_factory=dict)


def cluster() -> str:
    return os.environ.get("HIVA_SUBMITIT_CLUSTER") or "slurm"


def check_slurm(t: SlurmTarget) -> None:
    """What ``--launcher slurm`` needs before any work: submitit, ``sbatch`` and a time limit
    (on a real cluster)."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise HivaError("--launcher slurm needs submitit; pip install submitit") from None
    if cluster() == "slurm":
        if shutil.which("sbatch") is None:
            raise HivaError(f"--launcher slurm: sbatch is not found on this machine; run "
                            f"{t.command} on a Slurm login node, or use --launcher local")
        if "time" not in t.settings:
            raise HivaError(f"{t.where}: --launcher slurm needs slurm.time (the job time limit, "
                            f"minutes or D-HH:MM:SS); {t.add_time}")


def make_executor(t: SlurmTarget):
    """A submitit executor for ``t``'s settings (checked first)."""
    check_slurm(t)
    import submitit

    s = t.settings
    ex = submitit.AutoExecutor(folder=t.folder, cluster=cluster())
    params = dict(name=t.name, nodes=1, tasks_per_node=1,
                  timeout_min=s.get("time", 24 * 60), gpus_per_node=s.get("gpus_per_node"),
                  cpus_per_task=s.get("cpus_per_task"), mem_gb=s.get("mem_gb"))
    for k in ("partition", "array_parallelism", "account", "qos", "constraint", "setup"):
        if k in s:
            params[f"slurm_{k}"] = s[k]
    ex.update_parameters(**params)
    return ex


def run_slurm(fn: Callable[[dict], dict], specs: list[dict], tally: Tally, t: SlurmTarget,
              noun: str = "run") -> None:
    """Submit ``fn`` over ``specs`` as one job array (a spec whose ``lock`` another process
    holds is counted busy instead), then wait and count each result into ``tally``."""
    ex = make_executor(t)
    todo = []
    for spec in specs:
        if spec.get("lock") and is_locked(Path(spec["lock"])):
            tally.add({"id": spec["id"], "status": "busy", "seconds": 0.0,
                       "reason": "another process runs it", "log": spec.get("log", "")})
        else:
            todo.append(spec)
    if not todo:
        return
    try:
        jobs = ex.map_array(fn, todo)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise HivaError(f"submitting {len(todo)} {noun}(s) failed: {first}; check "
                        f"{t.check}") from None
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    print(f"submitted {len(jobs)} {noun}(s) as job array {', '.join(ids)} (submitit folder "
          f"{t.folder}); waiting", flush=True)
    tally.parallel = min(len(jobs), int(t.settings.get("array_parallelism") or len(jobs)))
    pending = dict(enumerate(zip(jobs, todo)))
    poll = 0.5 if cluster() != "slurm" else 15.0
    try:
        while pending:
            for i, (job, spec) in list(pending.items()):
                if not job.done():
                    continue
                del pending[i]
                try:
                    res = job.result()
                except Exception as e:
                    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                    log = Path(spec.get("log", ""))
                    res = {"id": spec["id"], "status": "failed", "seconds": 0.0,
                           "reason": f"job {job.job_id}: {(lines or ['failed'])[-1][:300]}",
                           "log": str(log if spec.get("log") and log.exists()
                                      else job.paths.stderr)}
                tally.add(res)
            if pending:
                time.sleep(poll)
    except KeyboardInterrupt:
        print(f"interrupted: the jobs {', '.join(ids)} keep running on the cluster; rerun the "
              "same command once they end", file=sys.stderr, flush=True)
        raise
