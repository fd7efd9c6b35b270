"""Wall time of ``hiva report ROOT`` on a sweep the size of a paper's ablation table.

Builds a synthetic sweep in a temp folder (default 8 arms × 5 seeds, 5 folds each: 200 run-fold
prediction files of 40 test subjects × 300 frames and 12 AUs, about 10% of labels unknown,
written in the real test_predictions.parquet format with sweep.json, config.yaml and
metrics.json), then times the report in this process (what the CLI runs: read every fold's
predictions, count per subject, 2000 paired subject resamples, tables, Markdown, JSON and the
forest plot). Also times reading the predictions alone, to show where the time goes.

    .venv/bin/python benchmarks/bench_report.py [--arms 8] [--seeds 5] [--folds 5]
        [--subjects 40] [--frames 300] [--aus 12] [--resamples 2000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

AU_IDS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24, 25, 26, 27, 28)


def build(root: Path, arms: int, seeds: int, folds: int, subjects: int, frames: int,
          n_aus: int) -> int:
    import numpy as np
    import pandas as pd

    aus = AU_IDS[:n_aus]
    rng = np.random.default_rng(0)
    n = subjects * frames
    # The labels are shared by every run (the same data); predictions differ per arm and seed.
    labels = {k: (rng.random((n, n_aus)) < rng.uniform(0.1, 0.5, n_aus)).astype(np.int8)
              for k in range(1, folds + 1)}
    unknown = {k: rng.random((n, n_aus)) < 0.1 for k in labels}
    subj = {k: np.repeat([f"S{k}{s:03d}" for s in range(subjects)], frames) for k in labels}
    runs, files = [], 0
    for a in range(arms):
        flip = 0.15 + 0.02 * a
        for seed in range(seeds):
            rid = f"arm{a}/seed{seed}"
            out = root / rid
            meta = {}
            for k, y in labels.items():
                p = np.where(y == 1, rng.uniform(0.5, 1, y.shape), rng.uniform(0, 0.5, y.shape))
                p = np.where(rng.random(y.shape) < flip, 1 - p, p).astype(np.float32)
                df = pd.DataFrame({"path": [f"{s}/{i}.png" for i, s in enumerate(subj[k])],
                                   "subject": subj[k], "sequence": "T1",
                                   "frame": np.arange(n)})
                for j, au in enumerate(aus):
                    df[f"p_AU{au:02d}"] = p[:, j]
                    yy = pd.array(y[:, j], dtype="Int8")
                    yy[unknown[k][:, j]] = pd.NA
                    df[f"y_AU{au:02d}"] = yy
                (out / f"fold{k}").mkdir(parents=True)
                df.to_parquet(out / f"fold{k}" / "test_predictions.parquet", index=False)
                files += 1
                meta[str(k)] = {"fold": k, "subject_ids": {"test": sorted(set(subj[k]))}}
            (out / "config.yaml").write_text(f"seed: {seed}\n")
            (out / "metrics.json").write_text(json.dumps({"aus": list(aus), "folds": meta}))
            runs.append({"id": rid, "arm": f"arm{a}", "seed": seed, "label_fraction": 1.0,
                         "dir": rid})
    (root / "sweep.json").write_text(json.dumps({"version": 1, "runs": runs}))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--subjects", type=int, default=40)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--aus", type=int, default=12)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()

    from hiva.train.bootstrap import load_run
    from hiva.train.report import read_sweep, run_report

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        files = build(root, a.arms, a.seeds, a.folds, a.subjects, a.frames, a.aus)
        print(f"built {a.arms * a.seeds} runs, {files} prediction files "
              f"({a.subjects} subjects × {a.frames} frames, {a.aus} AUs) in "
              f"{time.perf_counter() - t0:.1f} s")
        best = float("inf")
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            text = run_report([root], resamples=a.resamples, markdown=Path(tmp) / "r.md",
                              json_path=Path(tmp) / "r.json", plot=Path(tmp) / "f.png")
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        groups, _ = read_sweep(root)
        for runs in groups.values():
            for rid, path in runs:
                load_run(path, rid)
        read = time.perf_counter() - t0
        print(text.split("\n\n")[0])
        print(f"hiva report: {best:.2f} s wall ({a.resamples} resamples; reading and counting "
              f"the predictions alone: {read:.2f} s)")


if __name__ == "__main__":
    main()
