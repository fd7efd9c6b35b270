"""Executing a sweep's runs: one run's config file, lock and ``hiva train`` subprocess and why it
failed (``execute_run``), the progress tally, and the local launcher (``run_local``); the Slurm
launcher (``hiva.train.slurm``) runs the same ``execute_run`` inside each job. Imports neither
torch nor numpy.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from hiva.runs import METRICS, SWEEP_LOCK, SWEEP_RUN_CONFIG, SWEEP_RUN_LOG, is_finished
from hiva.train.sweep import Run


def write_run_config(run: Run) -> Path:
    import yaml

    from hiva.config import config_dict
    from hiva.runtime import write_text_atomic

    d = Path(run.config.out)
    d.mkdir(parents=True, exist_ok=True)
    p = d / SWEEP_RUN_CONFIG
    write_text_atomic(p, yaml.safe_dump(config_dict(run.config), sort_keys=False))
    return p


# --------------------------------------------------------------------------- one run
def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the train subprocess gets SIGKILL when the sweep dies, so a killed sweep leaves
    no orphan training on (and a rerun never trains a run twice at once)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _lock(d: Path, wait_s: float) -> int | None:
    """An fd holding an exclusive lock on ``d/.sweep.lock``; None if another process holds it
    after ``wait_s``. -1 where file locks do not exist (no fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    fd = os.open(d / SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    end = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= end:
                os.close(fd)
                return None
            time.sleep(0.2)


def is_busy(d: Path) -> bool:
    """Whether another process holds the run's lock now (dry-run and submission check)."""
    if not (d / SWEEP_LOCK).exists():
        return False
    fd = _lock(d, 0)
    if fd is None:
        return True
    if fd >= 0:
        os.close(fd)
    return False


def train_command(config: str, nproc: int = 1) -> list[str]:
    train = ["-m", "hiva.cli", "train", "--config", str(config)]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", str(nproc), *train]
    return [sys.executable, *train]


def _failure_reason(rc: int, log: Path, offset: int) -> str:
    import signal

    try:
        with open(log, errors="replace") as f:
            f.seek(offset)
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if ln.startswith("hiva: error:")]
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        why = f"killed by {name}" + (" (out of memory?)" if -rc == signal.SIGKILL else "")
    elif errors:
        why = errors[-1][len("hiva: error:"):].strip()
    elif lines:
        why = f"exit code {rc}: {lines[-1]}"
    else:
        why = f"exit code {rc}, no output"
    return why[:300]


def execute_run(spec: dict) -> dict:
    """Train one run in a subprocess (``spec``: id, dir, config, cwd, nproc, lock_wait_s), its
    output appended to ``dir/train.log``, holding ``dir/.sweep.lock`` meanwhile. Returns
    {id, status: finished|failed|skipped|busy, reason, seconds, log}. Module level: submitit
    pickles it into Slurm jobs."""
    t0 = time.monotonic()
    d = Path(spec["dir"])
    log = d / SWEEP_RUN_LOG
    res = {"id": spec["id"], "log": str(log), "reason": "", "seconds": 0.0}
    if is_finished(d):
        return {**res, "status": "skipped", "reason": "already finished"}
    d.mkdir(parents=True, exist_ok=True)
    fd = _lock(d, float(spec.get("lock_wait_s", 5.0)))
    if fd is None:
        return {**res, "status": "busy", "reason": f"another process trains it ({d / SWEEP_LOCK} "
                "is locked)"}
    try:
        if is_finished(d):
            return {**res, "status": "skipped", "reason": "already finished"}
        cmd = train_command(spec["config"], int(spec.get("nproc", 1)))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log, "a") as f:
            f.write(f"==== hiva sweep {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                    f"{shlex.join(cmd)}\n")
            f.flush()
            offset = f.tell()
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=spec.get("cwd"), env=env,
                                 pass_fds=(fd,) if fd >= 0 else (),
                                 preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            try:
                rc = p.wait()
            except BaseException:  # Ctrl-C / SIGTERM of the sweep: stop the run (it resumes)
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                raise
    finally:
        if fd >= 0:
            os.close(fd)
    res["seconds"] = time.monotonic() - t0
    if rc == 0 and is_finished(d):
        return {**res, "status": "finished"}
    reason = _failure_reason(rc, log, offset) if rc else f"exited 0 without writing {METRICS}"
    return {**res, "status": "failed", "reason": reason}


# --------------------------------------------------------------------------- the sweep
def _fmt_s(s: float) -> str:
    if s < 90:
        return f"{s:.1f} s"
    if s < 90 * 60:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class Tally:
    """Counts, ETA and the progress/summary lines of one invocation."""

    def __init__(self, todo: int, parallel: int = 1):
        self.todo, self.parallel, self.done = todo, max(1, parallel), 0
        self.times: list[float] = []
        self.counts = {"finished": 0, "skipped": 0, "busy": 0, "failed": 0}
        self.failed: list[dict] = []
        self.busy: list[str] = []

    def add(self, res: dict) -> None:
        self.done += 1
        st = res["status"]
        self.counts[st] += 1
        left = self.todo - self.done
        if st == "finished":
            self.times.append(res["seconds"])
            what = f"finished in {_fmt_s(res['seconds'])}"
        elif st == "failed":
            self.failed.append(res)
            what = f"FAILED after {_fmt_s(res['seconds'])}: {res['reason']} (log {res['log']})"
        elif st == "busy":
            self.busy.append(res["id"])
            what = f"busy: {res['reason']}"
        else:
            what = "skipped: already finished"
        if left == 0:
            eta = "shard done"
        elif self.times:
            mean = sum(self.times) / len(self.times)
            eta = f"{left} left, ETA {_fmt_s(mean * math.ceil(left / self.parallel))}"
        else:
            eta = f"{left} left, ETA ? (no run finished yet)"
        print(f"[{self.done}/{self.todo}] {res['id']}: {what} · {eta}", flush=True)

    def summary(self, label: str) -> int:
        c = self.counts
        print(f"{label}: finished {c['finished']}, skipped {c['skipped']} (already finished), "
              f"failed {c['failed']}" + (f", busy {c['busy']}" if c["busy"] else ""), flush=True)
        for r in self.failed:
            print(f"  failed {r['id']}: {r['reason']} (log {r['log']})", flush=True)
        if self.busy:
            print(f"  busy (trained by another process; rerun to pick them up): "
                  f"{', '.join(self.busy)}", flush=True)
        return 1 if c["failed"] else 0


def run_spec(run: Run, config: Path, nproc: int = 1) -> dict:
    """What ``execute_run`` needs of a run, as plain data (a Slurm job receives it pickled)."""
    return {"id": run.id, "dir": str(Path(run.config.out).absolute()),
            "config": str(config.absolute()), "cwd": os.getcwd(), "nproc": nproc}


def run_local(runs: list[Run], tally: Tally) -> None:
    """The local launcher: the runs one after another in subprocesses, each tallied."""
    for run in runs:
        try:
            res = execute_run(run_spec(run, write_run_config(run)))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # the sweep's own trouble with this run (e.g. a disk error)
            msg = (str(e).splitlines() or [type(e).__name__])[0]
            res = {"id": run.id, "status": "failed", "reason": f"{type(e).__name__}: {msg}",
                   "seconds": 0.0, "log": str(Path(run.config.out) / SWEEP_RUN_LOG)}
        tally.add(res)
