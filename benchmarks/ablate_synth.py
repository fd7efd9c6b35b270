"""The ablation table on the synthetic set: every ``configs/ablations/*.yaml`` laid over the demo
recipe (``configs/demo.yaml``: input size, epochs, learning rate, one subject-exclusive split), one
``hiva train`` run each, then ``hiva report`` side by side.

Needs what ``make demo`` writes (the synthetic set and the text bank), or pass your own:

    .venv/bin/python benchmarks/ablate_synth.py [--data out/demo/synth/manifest.parquet]
        [--text-bank out/demo/text-bank] [--out out/ablations] [--only full,no_ddca] [--seed 0]

Runs resume (``--resume latest``), so a killed sweep continues where it stopped. One split and one
seed: differences of a few F1 points are within the noise of re-drawing subjects (shared/design
quotes ±6.5 F1 for BP4D+ folds); read the table as a smoke test of each switch, not as evidence.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HIVA = [sys.executable, "-m", "hiva.cli"]


def merged(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``; the ``model`` mapping is merged key by key."""
    out = {**base, **{k: v for k, v in over.items() if k != "model"}}
    out["model"] = {**base.get("model", {}), **over.get("model", {})}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="out/demo/synth/manifest.parquet")
    ap.add_argument("--text-bank", default="out/demo/text-bank")
    ap.add_argument("--out", default="out/ablations")
    ap.add_argument("--base", default=str(ROOT / "configs" / "demo.yaml"))
    ap.add_argument("--only", help="comma-separated config names (default: all)")
    ap.add_argument("--aus", default="bp4d")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    for need in (args.data, args.text_bank):
        if not Path(need).exists():
            sys.exit(f"{need} does not exist; run `make demo` first or pass --data/--text-bank")
    base = yaml.safe_load(Path(args.base).read_text())
    names = sorted(p.stem for p in (ROOT / "configs" / "ablations").glob("*.yaml"))
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    names.sort(key=lambda n: n != "full")  # the reference row first
    out = Path(args.out)
    (out / "configs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs, times = [], {}
    for name in names:
        over = yaml.safe_load((ROOT / "configs" / "ablations" / f"{name}.yaml").read_text())
        cfg_file = out / "configs" / f"{name}.yaml"
        cfg_file.write_text(yaml.safe_dump(merged(base, over), sort_keys=False))
        t0 = time.perf_counter()
        subprocess.run([*HIVA, "train", "--config", str(cfg_file), "--data", args.data,
                        "--text-bank", args.text_bank, "--aus", args.aus, "--seed",
                        str(args.seed), "--out", str(out / name), "--resume", "latest",
                        "--no-progress"], check=True, env=env)
        times[name] = time.perf_counter() - t0
        runs.append(str(out / name))
    for name, t in times.items():
        print(f"{name:14s} {t:7.1f} s")
    subprocess.run([*HIVA, "report", *runs, *sum((["--name", n] for n in names), []),
                    "--markdown", str(out / "report.md")], check=True, env=env)


if __name__ == "__main__":
    main()
