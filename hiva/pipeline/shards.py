"""Launching the shards of ``hiva generate-descriptions`` and ``hiva embed``: with ``--launcher
local|slurm --num-shards N`` and no ``--shard-index``, each shard not yet done runs as the same
command with ``--shard-index I`` (its settings from one resolved config file), through the
launchers ``hiva sweep`` uses too (``hiva.jobs``): here one after another or ``--parallel K`` at
a time, or as one Slurm job array (``--slurm KEY=VALUE`` / ``--slurm FILE.yaml``: the keys of a
sweep file's ``slurm`` section). A failed shard is reported in one line naming its log; the merge
(the command's own, in hiva/pipeline/generate.py and hiva/pipeline/embed.py) runs once every
shard is done. A shard's log, lock and the config file live in the command's launch folder.
Imports neither torch nor pandas.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiva.config import config_dict
from hiva.errors import HivaError
from hiva.jobs.launch import check_launcher, launch
from hiva.jobs.process import execute_command
from hiva.jobs.settings import slurm_from_items
from hiva.jobs.slurm import SlurmTarget, check_slurm
from hiva.jobs.tally import Tally
from hiva.runtime import write_text_atomic

LAUNCHER_HELP = ("Run all --num-shards N shards and merge them: local (here, one after the "
                 "other, or --parallel at a time) | slurm (one submitit job array). A rerun "
                 "skips finished shards.")
PARALLEL_HELP = "With --launcher local: shards run at once (default 1)."
SLURM_HELP = ("With --launcher slurm: KEY=VALUE (partition, time, gpus_per_node, cpus_per_task, "
              "mem_gb, array_parallelism, account, qos, constraint, setup) or a YAML file of "
              "them (a sweep file's slurm section); repeatable.")


@dataclass(frozen=True)
class Launch:
    """The checked launch flags: the launcher, local jobs at once, the Slurm settings."""

    launcher: str
    parallel: int = 1
    slurm: dict = field(default_factory=dict)


def launch_options(launcher: str | None, *, shard_index: int | None = None,
                   parallel: int | None = None, slurm: list[str] | None = None,
                   finalize: bool = False) -> Launch | None:
    """``--launcher``, ``--parallel`` and ``--slurm`` checked against each other and against
    ``--shard-index`` / ``--finalize``; None without ``--launcher`` (the command runs one shard
    here, as always). Each mistake is one line naming the fix."""
    if launcher is None:
        if parallel is not None:
            raise HivaError("--parallel sets how many shards --launcher local runs at once; add "
                            "--launcher local --num-shards N, or drop --parallel")
        if slurm:
            raise HivaError("--slurm holds the settings of --launcher slurm; add --launcher "
                            "slurm --num-shards N, or drop --slurm")
        return None
    check_launcher(launcher)
    if shard_index is not None:
        raise HivaError("--launcher runs every shard itself; drop --shard-index (or drop "
                        "--launcher to run that one shard here)")
    if finalize:
        raise HivaError("--launcher merges the shards once all are done; drop --finalize (or "
                        "drop --launcher to only merge)")
    if parallel is not None and launcher != "local":
        raise HivaError("--parallel is for --launcher local; on Slurm pass --slurm "
                        "array_parallelism=K")
    if parallel is not None and parallel < 1:
        raise HivaError(f"--parallel {parallel}: pass 1 or more shards at once")
    if slurm and launcher != "slurm":
        raise HivaError("--slurm is for --launcher slurm; drop it with --launcher local")
    return Launch(launcher, parallel or 1, slurm_from_items(slurm) if launcher == "slurm" else {})


def check_launch(command: str, cfg: Any, launch_dir: Path, opts: Launch) -> SlurmTarget | None:
    """Before any work: a shard count to launch and, for Slurm, submitit, sbatch and a time
    limit. Returns where Slurm jobs go (None: local)."""
    if cfg.num_shards < 2:
        raise HivaError(f"--launcher runs the shards of --num-shards N; add --num-shards N (2 or "
                        f"more) to split the work, or drop --launcher to run hiva {command} here")
    if opts.launcher != "slurm":
        return None
    target = SlurmTarget(folder=launch_dir.absolute() / "submitit", name=f"hiva-{command}",
                         command=f"hiva {command}", where="--slurm",
                         add_time="add e.g. --slurm time=240",
                         check="the --slurm settings", settings=opts.slurm)
    check_slurm(target)
    return target


def shard_log(launch_dir: Path, i: int) -> Path:
    return launch_dir / f"shard-{i:03d}.log"


def launch_shards(command: str, cfg: Any, launch_dir: Path, opts: Launch,
                  target: SlurmTarget | None, done: Callable[[int], bool],
                  extra: tuple[str, ...] = (), redo: bool = False) -> int:
    """Run the shards of ``cfg`` that are not ``done`` (``redo``: all) as ``hiva COMMAND
    --config LAUNCH_DIR/config.yaml --out OUT --num-shards N --shard-index I EXTRA`` jobs, wait,
    and print one line per shard and the summary. Returns 0 once every shard is done; else the
    exit code (1: a shard failed, 130: interrupted), after saying how to resume."""
    import yaml

    n = cfg.num_shards
    launch_dir = launch_dir.absolute()
    launch_dir.mkdir(parents=True, exist_ok=True)
    config = launch_dir / "config.yaml"
    write_text_atomic(config, yaml.safe_dump(config_dict(cfg), sort_keys=False))
    todo = [i for i in range(n) if redo or not done(i)]
    print(f"hiva {command} → {cfg.out}: {n} shards, {n - len(todo)} done, {len(todo)} to run; "
          f"launcher {opts.launcher} (logs in {launch_dir})", flush=True)
    tally = Tally(len(todo), opts.parallel, noun="shard")
    tally.counts["skipped"] = n - len(todo)
    specs = [{"id": f"shard {i}", "log": str(shard_log(launch_dir, i)),
              "lock": str(launch_dir / f"shard-{i:03d}.lock"), "cwd": os.getcwd(),
              "header": f"hiva {command} shard {i} of {n}",
              "cmd": [sys.executable, "-m", "hiva.cli", command, "--config", str(config),
                      "--out", str(cfg.out), "--num-shards", str(n), "--shard-index", str(i),
                      *extra]} for i in todo]
    resume = "rerun the same command to resume: finished shards are skipped"
    try:
        launch(execute_command, specs, tally, opts.launcher, parallel=opts.parallel,
               slurm=target, noun="shard")
    except KeyboardInterrupt:
        tally.summary(f"hiva {command}: shards interrupted")
        print(resume, file=sys.stderr, flush=True)
        return 130
    code = tally.summary(f"hiva {command}: {n} shards")
    if code:
        print(f"nothing was merged; fix what the failed shards' logs say, then {resume}",
              file=sys.stderr, flush=True)
        return code
    missing = [i for i in range(n) if not done(i)]
    if missing:
        raise HivaError(f"shard(s) {', '.join(map(str, missing))} of {n} are not done (run by "
                        "another process, see above); rerun the same command once they end to "
                        "merge")
    return 0
