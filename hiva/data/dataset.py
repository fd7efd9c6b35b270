"""A torch Dataset over a manifest: image tensor, AU targets, known-label mask.

A missing or corrupt image yields ``None`` (counted in ``AUDataset.bad`` within the process and
logged); ``collate_skip`` drops those items and reports how many in ``batch["skipped"]``, so a
bad file never crashes training.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hiva.facs import au_column

log = logging.getLogger(__name__)


class AUDataset:
    """``dataset[i]`` → ``{"image", "target", "mask", "index"}`` or ``None`` for a bad image."""

    def __init__(self, df: pd.DataFrame, aus, transform=None):
        self.paths = df["path"].astype(str).tolist()
        self.aus = tuple(aus)
        labels = df[[au_column(n) for n in self.aus]].astype("Float64")
        self.mask = labels.notna().to_numpy(dtype=bool)
        self.target = labels.fillna(0).to_numpy(dtype=np.float32)
        self.transform = transform
        self.bad = 0
        self.bad_paths: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return im.convert("RGB")

    def __getitem__(self, i: int):
        import torch

        try:
            img = self.load(i)
        except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for bad files
            self.bad += 1
            self.bad_paths.append(self.paths[i])
            log.warning("skipping unreadable image %s (%s)", self.paths[i], type(e).__name__)
            return None
        image = self.transform(img) if self.transform is not None else _to_tensor(img)
        return {
            "image": image,
            "target": torch.from_numpy(self.target[i]),
            "mask": torch.from_numpy(self.mask[i]),
            "index": i,
        }


def _to_tensor(img):
    from torchvision.transforms.v2 import functional as F

    return F.to_dtype(F.to_image(img), scale=True)


def collate_skip(batch):
    """Default collation after dropping ``None`` items; ``None`` when the whole batch was bad.

    The batch carries ``skipped`` (int): how many items were dropped. Sum it in the training
    loop — with ``num_workers > 0`` each worker has its own copy of ``AUDataset.bad``."""
    from torch.utils.data import default_collate

    good = [b for b in batch if b is not None]
    if not good:
        return None
    out = default_collate(good)
    out["skipped"] = len(batch) - len(good)
    return out
