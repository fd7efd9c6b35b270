"""Carrying out a sweep's plan (``hiva.train.sweep`` makes it): each run's state, the per-run lock
and config file, the ``hiva train`` subprocess and why it failed, the local and Slurm (submitit)
launchers, one progress line per run, and ``run_sweep``, what ``hiva sweep`` calls. Imports
neither torch nor numpy.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from hiva.errors import HivaError
from hiva.train.sweep import (
    FREE_KEYS,
    LOCK_NAME,
    PLAN_FILE,
    RUN_CONFIG,
    RUN_LOG,
    Run,
    Sweep,
    _flat,
    check_shards,
    load_sweep,
    shard_of,
    shard_runs,
)


def run_state(root: Path, run: Run) -> str:
    """finished (its metrics.json exists), partial (training started) or new."""
    d = Path(root) / run.dir
    if (d / "metrics.json").exists():
        return "finished"
    if (d / "config.yaml").exists() or any(d.glob("fold*")):
        return "partial"
    return "new"


def check_root(sweep: Sweep) -> dict | None:
    """The existing ``ROOT/sweep.json`` (None if none); refused when its plan differs."""
    from hiva.runtime import require_dir_path

    root = require_dir_path(sweep.root, "--out")
    f = root / PLAN_FILE
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

    from hiva.config import config_dict

    try:
        old = yaml.safe_load((root / run.dir / RUN_CONFIG).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []

    a, b = _flat(old), _flat(config_dict(run.config))  # keys on one side only: a hiva update
    return sorted(k for k in set(a) & set(b) if k not in FREE_KEYS and a[k] != b[k])


def write_plan(sweep: Sweep) -> None:
    """Create ROOT and write ``sweep.json`` unless the same plan is there (every shard writes the
    same bytes, atomically, so shards need no coordination). The same runs with another
    ``primary`` contrast (e.g. one added to the sweep file later) rewrite it."""
    from hiva.runtime import writable_dir, write_text_atomic

    old = check_root(sweep)
    root = writable_dir(sweep.root, "--out")
    if old is None or old.get("primary") != sweep.primary:
        write_text_atomic(root / PLAN_FILE, json.dumps(sweep.plan(), indent=2) + "\n")


def write_run_config(run: Run) -> Path:
    import yaml

    from hiva.config import config_dict
    from hiva.runtime import write_text_atomic

    d = Path(run.config.out)
    d.mkdir(parents=True, exist_ok=True)
    p = d / RUN_CONFIG
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
    fd = os.open(d / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
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
    if not (d / LOCK_NAME).exists():
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
    log = d / RUN_LOG
    res = {"id": spec["id"], "log": str(log), "reason": "", "seconds": 0.0}
    if (d / "metrics.json").exists():
        return {**res, "status": "skipped", "reason": "already finished"}
    d.mkdir(parents=True, exist_ok=True)
    fd = _lock(d, float(spec.get("lock_wait_s", 5.0)))
    if fd is None:
        return {**res, "status": "busy", "reason": f"another process trains it ({d / LOCK_NAME} "
                "is locked)"}
    try:
        if (d / "metrics.json").exists():
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
    if rc == 0 and (d / "metrics.json").exists():
        return {**res, "status": "finished"}
    reason = _failure_reason(rc, log, offset) if rc else "exited 0 without writing metrics.json"
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


def _spec(run: Run, config: Path, nproc: int = 1) -> dict:
    return {"id": run.id, "dir": str(Path(run.config.out).absolute()),
            "config": str(config.absolute()), "cwd": os.getcwd(), "nproc": nproc}


def _run_local(runs: list[Run], tally: Tally) -> None:
    for run in runs:
        try:
            res = execute_run(_spec(run, write_run_config(run)))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # the sweep's own trouble with this run (e.g. a disk error)
            msg = (str(e).splitlines() or [type(e).__name__])[0]
            res = {"id": run.id, "status": "failed", "reason": f"{type(e).__name__}: {msg}",
                   "seconds": 0.0, "log": str(Path(run.config.out) / RUN_LOG)}
        tally.add(res)


def run_sweep(path: str | Path, root: str | Path, *, dry_run: bool = False,
              num_shards: int = 1, shard_index: int = 0, launcher: str = "local",
              sets: list[str] | None = None) -> int:
    """``hiva sweep``: validate, print or run this shard's part of the plan; the exit code."""
    check_shards(num_shards, shard_index)
    if launcher not in ("local", "slurm"):
        raise HivaError(f"--launcher {launcher!r}: pass local or slurm")
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
        if launcher == "local":
            _run_local(todo, tally)
        else:
            from hiva.train.slurm import run_slurm

            run_slurm(sweep, todo, tally)
    except KeyboardInterrupt:
        tally.summary(f"sweep {shard_txt} interrupted")
        print("rerun the same command to resume: finished runs are skipped, partial ones "
              "continue from their last epoch", file=sys.stderr, flush=True)
        return 130
    return tally.summary(f"sweep {shard_txt}")
