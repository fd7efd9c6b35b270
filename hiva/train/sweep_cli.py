"""``hiva sweep``: parse flags, call hiva.train.sweep (imported inside, so ``hiva --help`` stays
fast)."""

from __future__ import annotations

from pathlib import Path

import typer

from hiva.config import SET_HELP
from hiva.runs import SWEEP_PLAN
from hiva.train.launch import run_sweep


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep YAML: base, set, arms, seeds, "
                                      "label_fractions, folds, slurm (see configs/sweeps/)."),
    out: Path = typer.Option(..., "--out", help=f"Sweep folder: {SWEEP_PLAN} and one `hiva train` "
                             "run folder per run (ARM/seedS[/labelsP])."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (run, state, shard) "
                                 "and run nothing."),
    num_shards: int = typer.Option(1, "--num-shards", help="Split the plan: run i belongs to "
                                   "shard i mod N."),
    shard_index: int = typer.Option(0, "--shard-index", help="Which shard to run (0..N-1)."),
    launcher: str = typer.Option("local", "--launcher", help="local: one run after the other "
                                 "as subprocesses | slurm: a submitit job array, then wait."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP.replace(
        "Order: --config file, then --set, then the named flags.",
        "Applied to every run, over base, set and arms.")),
) -> None:
    """Run a grid of `hiva train` runs (arms × label fractions × seeds). A rerun skips finished
    runs and resumes partial ones; a failed run is reported and the others go on (exit code 1
    when any failed)."""
    code = run_sweep(sweep_file, out, dry_run=dry_run, num_shards=num_shards,
                     shard_index=shard_index, launcher=launcher, sets=sets)
    if code:
        raise typer.Exit(code)
