"""The local launcher: the jobs on this machine, one after another, or up to ``parallel`` at a
time (threads, each waiting on its job's subprocess), each counted into the tally as it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from hiva.jobs.process import stop_running
from hiva.jobs.tally import Tally, trouble


def _guarded(fn: Callable[[dict], dict], spec: dict) -> dict:
    """``fn(spec)``; the launcher's own trouble with a job (e.g. a disk error) as its failure."""
    try:
        return fn(spec)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        return trouble(spec["id"], e, Path(spec.get("log", "")))


def run_local(fn: Callable[[dict], dict], specs: list[dict], tally: Tally,
              parallel: int = 1) -> None:
    """Run ``fn`` on each spec here; with ``parallel`` > 1 that many at once. Ctrl-C stops the
    running jobs' subprocesses and raises."""
    if parallel <= 1 or len(specs) <= 1:
        for spec in specs:
            tally.add(_guarded(fn, spec))
        return

    tally.parallel = min(parallel, len(specs))
    pool = ThreadPoolExecutor(max_workers=tally.parallel, thread_name_prefix="hiva-job")
    futures = {pool.submit(_guarded, fn, s) for s in specs}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                tally.add(f.result())
    except BaseException:
        for f in futures:
            f.cancel()
        t0 = time.monotonic()
        while not all(f.done() for f in futures):  # a job may start just after the first stop
            stop_running(kill=time.monotonic() - t0 > 30)
            time.sleep(0.1)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
