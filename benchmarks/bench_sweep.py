"""Sweep overhead: the same N tiny runs (arms × seeds, 1 epoch) once through ``hiva sweep`` and
once as N separate ``hiva train`` subprocess calls, with the identical resolved configs. Prints
both wall times, the overhead ratio, the sweep's fixed start cost (``--dry-run``) and what the
per-run overhead would be on a real-length run. Goal: ≤ 2% on real-length runs.

    .venv/bin/python benchmarks/bench_sweep.py [--arms 3] [--seeds 2] [--steps 2] [--real-s 180]

Renders a tiny synthetic set (6 subjects × 6 images, 64 px) in a temp folder. Print-only: no
assertion. On a shared machine give ``cat /proc/loadavg`` beside it: tiny runs are dominated by
each subprocess's start (Python + torch import, data loading), which both sides pay equally.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = dict(model=dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32,
                       num_heads=2, text_mode="random", random_text_tokens=2),
            aus="1,2,4,6,12,25", num_folds=3, folds=[1], epochs=1, batch_size=4, num_workers=0,
            amp="off", val_fraction=0.25, resize=36, channels_last=False)
ARMS = [("full", None), ("no_graph", {"model": {"graph": False}}),
        ("head_linear", {"model": {"head": "linear"}}), ("no_ddca", {"model": {"ddca": False}}),
        ("no_cdca", {"model": {"cdca": False}})]


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def direct_round(runs, folder: Path, hiva: list[str], env: dict) -> float:
    """The plan's resolved configs, one ``hiva train`` each (out → a folder of their own)."""
    import yaml

    from hiva.config import config_dict

    total = 0.0
    for r in runs:
        d = config_dict(r.config)
        d.update(out=str(folder / r.id), resume=None)
        p = folder / "cfg" / f"{r.id.replace('/', '_')}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(d))
        total += timed([*hiva, "train", "--config", str(p)], env)
    return total


def bookkeeping(runs) -> float:
    """Seconds the sweep spends per run besides the train subprocess: state check, resolved
    config file, lock, log header (in-process, no training)."""
    from hiva.jobs.process import lock
    from hiva.train.executor import write_run_config
    from hiva.train.launch import run_state
    from hiva.train.sweep import LOCK_NAME

    t = time.perf_counter()
    for r in runs:
        run_state(Path(r.config.out).parents[len(Path(r.id).parts) - 1], r)
        d = write_run_config(r).parent
        fd = lock(d / LOCK_NAME, 0)
        with open(d / "train.log", "a") as f:
            f.write("==== header\n")
        os.close(fd)
    return (time.perf_counter() - t) / len(runs)


def main() -> None:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", type=int, default=3, help=f"1..{len(ARMS)}")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="max_steps_per_epoch")
    ap.add_argument("--repeat", type=int, default=2, help="rounds, in ABBA order (direct, "
                    "sweep, sweep, direct, ...) so drifting machine load hits both sides alike")
    ap.add_argument("--real-s", type=float, default=180.0,
                    help="length of a real run for the projection (the demo run: ~3 min)")
    args = ap.parse_args()

    from hiva.data.synth import render_synthetic
    from hiva.train.sweep import load_sweep

    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = render_synthetic(tmp / "set", subjects=6, per_subject=6, seed=0, size=64,
                                    workers=1, grid=False, progress=False)
        (tmp / "base.yaml").write_text(yaml.safe_dump(
            dict(TINY, max_steps_per_epoch=args.steps)))
        sweep_file = tmp / "sweep.yaml"
        sweep_file.write_text(yaml.safe_dump({
            "base": "base.yaml", "set": {"data": str(manifest)},
            "arms": dict(ARMS[: args.arms]), "seeds": list(range(args.seeds))}))
        root = tmp / "sweep"
        runs = load_sweep(sweep_file, root).runs
        n = len(runs)

        book = bookkeeping(runs)
        hiva = [sys.executable, "-m", "hiva.cli"]
        start = timed([*hiva, "sweep", str(sweep_file), "--out", str(root), "--dry-run"], env)
        directs, sweeps = [], []
        for i in range(2 * args.repeat):
            k = len(sweeps)
            if (i % 4) in (1, 2):  # ABBA
                out = tmp / f"sweep{k}"
                sweeps.append(timed([*hiva, "sweep", str(sweep_file), "--out", str(out)], env))
                assert all((out / r.dir / "metrics.json").is_file() for r in runs)
            else:
                directs.append(direct_round(runs, tmp / f"direct{len(directs)}", hiva, env))
    direct, swept = sum(directs) / len(directs), sum(sweeps) / len(sweeps)
    per_run = (swept - direct) / n
    print(f"{n} tiny runs ({args.arms} arms × {args.seeds} seeds, 1 epoch, "
          f"{args.steps} steps)  load {open('/proc/loadavg').read().split()[0]}")
    print(f"  {n} × hiva train : {direct:7.2f} s mean of {len(directs)} "
          f"({', '.join(f'{x:.1f}' for x in directs)}; {direct / n:.2f} s per run)")
    print(f"  hiva sweep       : {swept:7.2f} s mean of {len(sweeps)} "
          f"({', '.join(f'{x:.1f}' for x in sweeps)}); overhead {100 * (swept / direct - 1):+.1f}%")
    print(f"  sweep start (--dry-run: imports, validation of {n} configs): {start:.2f} s")
    print(f"  sweep bookkeeping per run (state, config file, lock, log): {1e3 * book:.1f} ms")
    print(f"  overhead per run {per_run:+.3f} s → {100 * per_run / args.real_s:+.2f}% of a "
          f"{args.real_s:.0f} s run")


if __name__ == "__main__":
    main()
