"""Picking the launcher: ``launch`` hands the jobs to the local one (``hiva.jobs.local``) or to
Slurm (``hiva.jobs.slurm``) and returns once each has been counted into the tally."""

from __future__ import annotations

from collections.abc import Callable

from hiva.errors import HivaError
from hiva.jobs.local import run_local
from hiva.jobs.slurm import SlurmTarget, run_slurm
from hiva.jobs.tally import Tally

LAUNCHERS = ("local", "slurm")


def check_launcher(launcher: str) -> None:
    if launcher not in LAUNCHERS:
        raise HivaError(f"--launcher {launcher!r}: pass local or slurm")


def launch(fn: Callable[[dict], dict], specs: list[dict], tally: Tally, launcher: str, *,
           parallel: int = 1, slurm: SlurmTarget | None = None, noun: str = "run") -> None:
    """Run ``fn`` (module level, so submitit can pickle it) on each spec with ``launcher``:
    local (``parallel`` at a time) or slurm (one job array on ``slurm``)."""
    check_launcher(launcher)
    if launcher == "local":
        run_local(fn, specs, tally, parallel)
    else:
        if slurm is None:
            raise ValueError("the slurm launcher needs a SlurmTarget")
        run_slurm(fn, specs, tally, slurm, noun)
