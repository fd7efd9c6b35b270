"""Data benchmarks: synthetic rendering images/s, DataLoader throughput (decode + augment,
2 workers) against what a CPU train step consumes, and a learnability probe of the synthetic set
(a linear classifier on HOG features of 96x96 grey images, subject-exclusive split: per-AU ROC-AUC).

    .venv/bin/python benchmarks/bench_data.py [--subjects 40] [--per-subject 30] [--size 160]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=40)
    ap.add_argument("--per-subject", type=int, default=30)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--difficulty", type=float, default=0.3)
    ap.add_argument("--skip-train-step", action="store_true")
    args = ap.parse_args()
    print(f"loadavg before: {open('/proc/loadavg').read().strip()}  cpus: {os.cpu_count()}")

    import numpy as np

    from hiva.data.manifest import manifest_aus, read_manifest
    from hiva.data.synth import render_synthetic

    tmp = Path(tempfile.mkdtemp(prefix="hiva-bench-"))
    n = args.subjects * args.per_subject
    for w in (1, 2):
        t = time.perf_counter()
        render_synthetic(tmp / f"w{w}", args.subjects, args.per_subject, 0, args.size,
                         args.difficulty, workers=w, grid=False, progress=False)
        dt = time.perf_counter() - t
        print(f"synth render+JPEG+manifest, {w} worker(s): {n / dt:7.1f} images/s "
              f"({n} images, {args.size}px)")
    df = read_manifest(tmp / "w2" / "manifest.parquet")
    aus = manifest_aus(df)

    import torch
    from PIL import Image
    from torch.utils.data import DataLoader

    from hiva.data.dataset import AUDataset, collate_skip
    from hiva.data.transforms import train_transform

    t = time.perf_counter()
    for p in df["path"][:500]:
        with Image.open(p) as im:
            im.convert("RGB")
    print(f"raw PIL decode only (1 process):       {500 / (time.perf_counter() - t):7.1f} images/s")
    ds = AUDataset(df, aus, train_transform(size=224, resize=256))
    for workers in (0, 2):
        dl = DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                        collate_fn=collate_skip, persistent_workers=False)
        t, seen = time.perf_counter(), 0
        for b in dl:
            seen += len(b["index"])
            if seen >= 640:
                break
        print(f"AUDataset+train_transform 224px, {workers} workers: "
              f"{seen / (time.perf_counter() - t):7.1f} images/s")

    if not args.skip_train_step:
        import timm

        torch.set_num_threads(2)
        m = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=len(aus))
        opt = torch.optim.AdamW(m.parameters(), 1e-3)
        x = torch.randn(32, 3, 224, 224)
        y = torch.randint(0, 2, (32, len(aus))).float()
        times = []
        for _ in range(4):
            t = time.perf_counter()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        print(f"train step EfficientNet-Lite0 bs32 224px (CPU): {32 / np.median(times[1:]):7.1f} "
              "images/s consumed")

    # Learnability probe: can a linear model see each AU at low resolution, across identities?
    from skimage.feature import hog
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from hiva.data.folds import assign_folds
    from hiva.facs import au_column

    x = np.stack([hog(np.asarray(Image.open(p).convert("L").resize((96, 96)), np.float32),
                      orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
                  for p in df["path"]])
    fold = assign_folds(df, "kfold", k=3, seed=0).to_numpy()
    tr, te = fold != 1, fold == 1
    aucs = []
    for a in aus:
        y = df[au_column(a)].astype(int).to_numpy()
        clf = LogisticRegression(C=0.1, max_iter=500).fit(x[tr], y[tr])
        aucs.append(roc_auc_score(y[te], clf.decision_function(x[te])))
    print("linear probe ROC-AUC on held-out identities (HOG of 96x96 grey): "
          + " ".join(f"AU{a}={v:.2f}" for a, v in zip(aus, aucs)) + f"  mean={np.mean(aucs):.3f}")
    print(f"loadavg after: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
