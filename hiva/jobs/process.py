"""One job as a subprocess: its output appended to a log file after a ``====`` header line
(``run_logged``), an exclusive file lock so two launchers never run one job at once (``lock``,
``is_locked``), why it failed in one line (``failure_reason``), and ``execute_command``, the job
that runs one command (a shard of ``hiva generate-descriptions`` or ``hiva embed``)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no file locks
    fcntl = None

_running: set[subprocess.Popen] = set()  # this process's children, for stop_running
_guard = threading.Lock()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the subprocess gets SIGKILL when its launcher dies, so a killed launcher leaves
    no orphan on (and a rerun never runs one job twice at once)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def lock(path: Path, wait_s: float) -> int | None:
    """An fd holding an exclusive lock on the file ``path`` (created); None if another process
    holds it after ``wait_s``. -1 where file locks do not exist (no fcntl)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return -1
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` now."""
    if not Path(path).exists():
        return False
    fd = lock(path, 0)
    if fd is None:
        return True
    if fd >= 0:
        os.close(fd)
    return False


def stop_running(kill: bool = False) -> None:
    """Terminate (``kill``: SIGKILL) the subprocesses ``run_logged`` runs in this process's
    threads: the local launcher's Ctrl-C with several jobs at once."""
    with _guard:
        procs = list(_running)
    for p in procs:
        try:
            p.kill() if kill else p.terminate()
        except OSError:
            pass


def run_logged(cmd: list[str], log: Path, header: str, *, cwd: str | None = None,
               env: dict | None = None, pass_fds: tuple[int, ...] = ()) -> tuple[int, int]:
    """Run ``cmd``, its output appended to ``log`` after ``==== HEADER TIME: CMD``; returns (its
    exit code, the log offset where its output starts). Ctrl-C or SIGTERM of the caller stops it
    (on Linux it also dies with the caller)."""
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    with open(log, "a") as f:
        f.write(f"==== {header} {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(cmd)}\n")
        f.flush()
        offset = f.tell()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=cwd, env=env, pass_fds=pass_fds,
                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        with _guard:
            _running.add(p)
        try:
            return p.wait(), offset
        except BaseException:  # Ctrl-C / SIGTERM of the launcher: stop the job (it resumes)
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            raise
        finally:
            with _guard:
                _running.discard(p)


def failure_reason(rc: int, log: Path, offset: int) -> str:
    """Why a job's subprocess failed, in one line: its last ``hiva: error:`` line, the signal
    that killed it, or its last output line."""
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


def run_locked(job: str, cmd: list[str], log: Path, header: str, *, lock_file: Path | None = None,
               lock_wait_s: float = 5.0, cwd: str | None = None,
               done: Callable[[], bool] | None = None) -> dict:
    """Run ``cmd`` with ``run_logged``, holding ``lock_file`` when given (busy if another process
    holds it after ``lock_wait_s``); ``done``, asked once the lock is held, skips a job another
    process finished meanwhile. Returns {id, status: finished|failed|skipped|busy, reason,
    seconds, log}; finished when it exits 0."""
    t0 = time.monotonic()
    res = {"id": job, "log": str(log), "reason": "", "seconds": 0.0}
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = -1
    if lock_file is not None:
        fd = lock(lock_file, lock_wait_s)
        if fd is None:
            return {**res, "status": "busy",
                    "reason": f"another process runs it ({lock_file} is locked)"}
    try:
        if done is not None and done():
            return {**res, "status": "skipped", "reason": "already finished"}
        rc, offset = run_logged(cmd, log, header, cwd=cwd, pass_fds=(fd,) if fd >= 0 else ())
    finally:
        if fd >= 0:
            os.close(fd)
    res["seconds"] = time.monotonic() - t0
    if rc == 0:
        return {**res, "status": "finished"}
    return {**res, "status": "failed", "reason": failure_reason(rc, log, offset)}


def execute_command(spec: dict) -> dict:
    """Run ``spec["cmd"]`` (in ``cwd``; output appended to ``log`` after a ``header`` line)
    through ``run_locked``, holding the lock file ``spec["lock"]`` when given. Module level:
    submitit pickles it into Slurm jobs."""
    return run_locked(spec["id"], list(spec["cmd"]), Path(spec["log"]),
                      spec.get("header", "hiva"),
                      lock_file=Path(spec["lock"]) if spec.get("lock") else None,
                      lock_wait_s=float(spec.get("lock_wait_s", 5.0)), cwd=spec.get("cwd"))
