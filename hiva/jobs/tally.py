"""Counting a launch's jobs as they end: one progress line each (``[3/8] ID: finished in 2.1
min · 5 left, ETA ...``), then the summary, with one line per failed job naming its log."""

from __future__ import annotations

import math
from pathlib import Path


def trouble(job: str, e: Exception, log: str | Path) -> dict:
    """The launcher's own trouble with a job (e.g. a disk error) as that job's failed result."""
    msg = (str(e).splitlines() or [type(e).__name__])[0]
    return {"id": job, "status": "failed", "reason": f"{type(e).__name__}: {msg}",
            "seconds": 0.0, "log": str(log)}


def fmt_s(s: float) -> str:
    if s < 90:
        return f"{s:.1f} s"
    if s < 90 * 60:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class Tally:
    """Counts, ETA and the progress/summary lines of one invocation; ``noun`` names a job
    ("run", "shard")."""

    def __init__(self, todo: int, parallel: int = 1, noun: str = "run"):
        self.todo, self.parallel, self.done = todo, max(1, parallel), 0
        self.noun = noun
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
            what = f"finished in {fmt_s(res['seconds'])}"
        elif st == "failed":
            self.failed.append(res)
            what = f"FAILED after {fmt_s(res['seconds'])}: {res['reason']} (log {res['log']})"
        elif st == "busy":
            self.busy.append(res["id"])
            what = f"busy: {res['reason']}"
        else:
            what = "skipped: already finished"
        if left == 0:
            eta = "all done"
        elif self.times:
            mean = sum(self.times) / len(self.times)
            eta = f"{left} left, ETA {fmt_s(mean * math.ceil(left / self.parallel))}"
        else:
            eta = f"{left} left, ETA ? (no {self.noun} finished yet)"
        print(f"[{self.done}/{self.todo}] {res['id']}: {what} · {eta}", flush=True)

    def summary(self, label: str) -> int:
        """Print the counts and one line per failed job (its reason and log); the exit code:
        1 when any failed."""
        c = self.counts
        print(f"{label}: finished {c['finished']}, skipped {c['skipped']} (already finished), "
              f"failed {c['failed']}" + (f", busy {c['busy']}" if c["busy"] else ""), flush=True)
        for r in self.failed:
            print(f"  failed {r['id']}: {r['reason']} (log {r['log']})", flush=True)
        if self.busy:
            print(f"  busy (run by another process; rerun to pick them up): "
                  f"{', '.join(self.busy)}", flush=True)
        return 1 if c["failed"] else 0
