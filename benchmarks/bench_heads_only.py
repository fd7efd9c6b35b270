"""Heads-only training (``model.freeze_backbone``) on the demo data: wall seconds of a demo-sized
``hiva train`` (configs/demo.yaml) with a cold feature cache, then the same run with a warm one,
and, with --with-finetune, the ratio against the fine-tuned demo run (the default, ~3 min on 2
cores). Goal: a warm heads-only run ≤ 30 s on 2 CPU cores.

    .venv/bin/python benchmarks/bench_heads_only.py [--manifest out/demo/synth/manifest.parquet]
        [--text-bank out/demo/text-bank] [--config configs/demo.yaml] [--dtypes float16,float32]
        [--with-finetune] [--keep DIR]

Needs `make demo-data` (renders and embeds; a few minutes, once). Each run is the CLI in a fresh
process, as a user starts it (imports included); each dtype gets its own cold cache in a temp
folder. Prints wall seconds, test mean F1 (float16 against float32 storage: the rounding must not
change it noticeably), the cache's size on disk, the machine (CPU count, torch threads) and
/proc/loadavg before and after: on a shared machine other processes may be running. Print-only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(args, out: Path, sets: list[str]) -> tuple[float, dict]:
    """Wall seconds of one ``hiva train`` and its metrics summary."""
    cmd = [sys.executable, "-m", "hiva.cli", "train", "--config", args.config, "--data",
           args.manifest, "--aus", "bp4d", "--text-bank", args.text_bank, "--out", str(out),
           "--no-progress", "--set", "model.map_prior=none"]  # the demo as this was measured,
    for s in sets:  # before it took the KL prior (which decodes images for its template)
        cmd += ["--set", s]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return secs, json.loads((out / "metrics.json").read_text())


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*.npy")) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default="out/demo/synth/manifest.parquet")
    ap.add_argument("--text-bank", default="out/demo/text-bank")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--dtypes", default="float16", help="feature_dtype(s) to time, e.g. "
                    "float16,float32")
    ap.add_argument("--with-finetune", action="store_true", help="also time the fine-tuned demo "
                    "run (~3 min on 2 cores)")
    ap.add_argument("--keep", help="folder for the runs and caches (default: a temp folder)")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown (docs/results/"
                    "benchmark.md's heads-only section)")
    args = ap.parse_args()
    for p in (args.manifest, args.text_bank):
        if not Path(p).exists():
            sys.exit(f"{p} is missing: run `make demo-data` first")
    import torch

    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_heads_only_"))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
          f"threads; config {args.config}; runs under {root}")
    print(f"loadavg before: {open('/proc/loadavg').read().strip()}")
    print(f"{'run':28} {'wall s':>8} {'test F1':>8} {'cache MB':>9}")
    rows, md = {}, []
    for dtype in args.dtypes.split(","):
        cache = root / f"cache-{dtype}"
        sets = ["model.freeze_backbone=true", f"feature_cache={cache}", f"feature_dtype={dtype}"]
        for phase in ("cold", "warm"):
            name = f"heads-only {dtype} {phase}"
            secs, m = train(args, root / f"run-{dtype}-{phase}", sets)
            rows[name] = secs
            print(f"{name:28} {secs:8.1f} {100 * m['mean']['mean_f1']:8.1f} {size_mb(cache):9.1f}",
                  flush=True)
            md.append([name, f"{secs:.1f}", f"{100 * m['mean']['mean_f1']:.1f}"])
    if args.with_finetune:
        secs, m = train(args, root / "run-finetune", [])
        print(f"{'fine-tuned (default)':28} {secs:8.1f} {100 * m['mean']['mean_f1']:8.1f} {'-':>9}")
        md.append(["fine-tuned backbone (the default)", f"{secs:.1f}",
                   f"{100 * m['mean']['mean_f1']:.1f}"])
        for name, s in rows.items():
            print(f"  {name}: {secs / s:.1f}× faster than fine-tuning")
        for row in md[:-1]:
            row.append(f"{secs / float(row[1]):.1f}×")
        md[-1].append("1×")
    load = open("/proc/loadavg").read().strip()
    print(f"loadavg after: {load}")
    if args.markdown:
        head = ["| demo-sized `hiva train` (configs/demo.yaml, 1,200 frames) | wall s | test F1 |"
                + (" speed-up |" if args.with_finetune else ""),
                "|---|---|---|" + ("---|" if args.with_finetune else "")]
        lines = head + ["| " + " | ".join(r) + " |" for r in md]
        when = time.strftime("%Y-%m-%d")
        lines += ["", f"Measured by `benchmarks/bench_heads_only.py` on {os.cpu_count()} CPU "
                  f"cores, torch {torch.__version__} with {torch.get_num_threads()} threads, no "
                  f"GPU, {when}; whole processes, imports included; cold = an empty feature "
                  "cache (it fills as the run goes), warm = the second run. Load average after: "
                  f"{' '.join(load.split()[:3])}."]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
