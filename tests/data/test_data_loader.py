from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hiva.data.dataset import AUDataset, collate_skip
from hiva.data.transforms import eval_transform, train_transform


def _manifest(tmp_path, n=6):
    rows = []
    for i in range(n):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), np.uint8)).save(p)
        rows.append({"path": str(p), "subject": "s", "sequence": "q", "frame": i,
                     "AU01": 1 if i % 2 else 0, "AU12": None if i == 0 else 1})
    df = pd.DataFrame(rows)
    df["AU01"] = df["AU01"].astype("Int8")
    df["AU12"] = df["AU12"].astype("Int8")
    return df


def test_items_and_masks(tmp_path):
    ds = AUDataset(_manifest(tmp_path), (1, 12), eval_transform(size=32, resize=36))
    it = ds[0]
    assert it["image"].shape == (3, 32, 32) and it["image"].dtype == torch.float32
    assert it["target"].tolist() == [0.0, 0.0]
    assert it["mask"].tolist() == [True, False]
    assert ds[1]["target"].tolist() == [1.0, 1.0]


def test_corrupt_and_missing_images_are_skipped_and_counted(tmp_path):
    df = _manifest(tmp_path)
    (tmp_path / "2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "4.jpg").unlink()
    ds = AUDataset(df, (1, 12), train_transform(size=32, resize=36))
    batches = list(DataLoader(ds, batch_size=3, collate_fn=collate_skip))
    assert sum(len(b["index"]) for b in batches) == 4
    assert ds.bad == 2
    assert sum(b["skipped"] for b in batches) == 2
    two = list(DataLoader(ds, batch_size=3, collate_fn=collate_skip, num_workers=2))
    assert sum(b["skipped"] for b in two) == 2  # counted even when workers hold the counters
    assert sorted(i for b in batches for i in b["index"].tolist()) == [0, 1, 3, 5]
    assert collate_skip([None, None]) is None


def test_train_transform_augments(tmp_path):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    t = train_transform(size=48, resize=56)
    torch.manual_seed(0)
    a, b = t(img), t(img)
    assert a.shape == (3, 48, 48)
    assert not torch.equal(a, b)
    e = eval_transform(size=48, resize=56)
    assert torch.equal(e(img), e(img))
