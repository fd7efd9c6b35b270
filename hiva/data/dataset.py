"""A torch Dataset over a manifest: image tensor, AU targets, known-label mask.

A missing or corrupt image yields ``None`` (counted in ``AUDataset.bad`` within the process and
logged); ``collate_skip`` drops those items and reports how many in ``batch["skipped"]``, so a
bad file never crashes training.

Augmentation randomness: with ``seed`` set, each item's transform draws from torch's CPU generator
seeded by (seed, epoch, index) inside ``torch.random.fork_rng``, so an item is the same whatever
process reads it (main process or any DataLoader worker, any ``num_workers``) and the caller's RNG
is left as it was. Call ``set_epoch(e)`` before building each epoch's DataLoader (workers copy the
dataset when the loader starts iterating, with ``persistent_workers=False``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hiva.data.image_files import as_rgb
from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.regions import SCHEME_POINTS, SCHEMES, au_discs
from hiva.runtime import stable_hash

log = logging.getLogger(__name__)


class AUDataset:
    """``dataset[i]`` → ``{"image", "target", "mask", "index"}`` (+ ``"regions"``,
    ``"prior_regions"``) or ``None`` for a bad image.

    When the manifest has a ``landmarks`` column and its metadata (``df.attrs["hiva"]``) names
    the ``landmark_scheme`` (or ``scheme`` is passed), each item also carries ``regions``: the
    AUs' region discs (N×C×3: x, y, r in pixels of the transformed image; NaN where a frame has
    no landmarks or an AU no region). The landmarks go through the same transform as the image
    (``tv_tensors.KeyPoints``), so crops, resizes and flips move the regions with the face.
    They move with the AUs too (a raised brow lifts its landmarks), so they only score maps.
    A ``landmarks_neutral`` column (the same face with no AU, as ``hiva data synth`` renders
    it) gives ``prior_regions`` the same way: the AU-independent regions a region prior may
    read in training. ``region_table``/``prior_table``: the {au: discs} table each is drawn
    from (None: ``hiva.facs.REGIONS``; ``hiva.text_regions`` reads one from text).
    ``intensity``: items also carry ``intensity``, the AUs' ``AUxx_intensity`` values (float32,
    NaN = unknown), for a model with the intensity head; off, nothing of them is read."""

    def __init__(self, df: pd.DataFrame, aus, transform=None, seed: int | None = None,
                 scheme: str | None = None, region_table: dict | None = None,
                 prior_table: dict | None = None, intensity: bool = False):
        self.region_table, self.prior_table = region_table, prior_table
        self.paths = df["path"].astype(str).tolist()
        # A pack's manifest (``hiva data pack``): pixels come from its shards, not the files.
        self.pack = None
        if "pack_file" in df.columns:
            self.pack = (df["pack_file"].astype(str).tolist(),
                         df["pack_row"].to_numpy(dtype=np.int64))
        self._shards: dict[str, np.ndarray] = {}
        self.aus = tuple(aus)
        self.scheme = scheme or (df.attrs.get("hiva") or {}).get("landmark_scheme")
        self.landmarks = None
        if self.scheme is not None and "landmarks" in df.columns:
            if self.scheme not in SCHEMES:
                raise HivaError(f"unknown landmark_scheme {self.scheme!r} in the manifest; "
                                f"known: {', '.join(SCHEMES)}")
            self.landmarks = df["landmarks"].tolist()
        self.neutral = (df["landmarks_neutral"].tolist()
                        if self.landmarks is not None and "landmarks_neutral" in df.columns
                        else None)
        labels = df[[au_column(n) for n in self.aus]].astype("Float64")
        self.mask = labels.notna().to_numpy(dtype=bool)
        self.target = labels.fillna(0).to_numpy(dtype=np.float32)
        self.intensity = intensity_targets(df, self.aus) if intensity else None
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.bad = 0
        self.bad_paths: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of item i in epoch e draw from ``sample_seed(i)`` for that epoch."""
        self.epoch = int(epoch)

    def sample_seed(self, i: int) -> int:
        """A 63-bit seed from (seed, epoch, index), the same in every process."""
        return stable_hash(f"hiva-aug:{self.seed}:{self.epoch}:{int(i)}") >> 1

    def load(self, i: int):
        """Frame ``i``'s pixels: an RGB PIL image, or from a pack a uint8 ``tv_tensors.Image``
        (3×S×S) read from its memory-mapped shard."""
        if self.pack is not None:
            return self._packed(i)
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return as_rgb(im)

    def _packed(self, i: int):
        import torch
        from torchvision import tv_tensors

        file, row = self.pack[0][i], int(self.pack[1][i])
        shard = self._shards.get(file)
        if shard is None:  # mapped once per process (DataLoader workers map their own)
            shard = self._shards[file] = np.load(file, mmap_mode="r", allow_pickle=False)
        pixels = torch.from_numpy(np.array(shard[row]))  # a copy: the map stays read-only
        return tv_tensors.Image(pixels.permute(2, 0, 1))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_shards"] = {}  # never pickle a map's pages to a worker: it maps its own
        return state

    def __getitem__(self, i: int):
        import torch

        try:
            img = self.load(i)
        except (OSError, ValueError, SyntaxError) as e:  # PIL (and NumPy) raise these
            self.bad += 1
            self.bad_paths.append(self.paths[i])
            log.warning("skipping unreadable image %s (%s)", self.paths[i], type(e).__name__)
            return None
        inputs = (img,)
        size = _size(img)
        if self.landmarks is not None:
            inputs += (self.keypoints(self.landmarks[i], size),)
        if self.neutral is not None:
            inputs += (self.keypoints(self.neutral[i], size),)
        if self.transform is None:
            out = (_to_tensor(img),) + inputs[1:]
        elif self.seed is None:
            out = self.transform(*inputs)
        else:
            # CPU generator only: torch.manual_seed would also reseed (and not restore) CUDA's.
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(self.sample_seed(i))
                out = self.transform(*inputs)
        image = out[0] if isinstance(out, tuple) else out
        item = {
            "image": image,
            "target": torch.from_numpy(self.target[i]),
            "mask": torch.from_numpy(self.mask[i]),
            "index": i,
        }
        if self.intensity is not None:
            item["intensity"] = torch.from_numpy(self.intensity[i])
        if self.landmarks is not None:
            tables = (self.region_table, self.prior_table)
            for j, key in enumerate(("regions", "prior_regions")[:len(inputs) - 1]):
                pts = (out[1 + j].numpy() if isinstance(out, tuple)
                       else np.full((1, 2), np.nan))
                item[key] = torch.from_numpy(au_discs(pts, self.scheme, self.aus, tables[j]))
        return item

    def keypoints(self, raw, size):
        """One frame's landmarks ``raw`` (a flat list in this scheme, else all NaN) as
        ``KeyPoints`` on an image of ``size`` (w, h), for the transforms."""
        from torchvision import tv_tensors

        k = SCHEME_POINTS[self.scheme]
        pts = np.full((k, 2), np.nan, np.float32)
        if isinstance(raw, (list, tuple, np.ndarray)) and len(raw) == 2 * k:
            pts = np.array(raw, dtype=np.float32).reshape(k, 2)  # a copy: rows may be read-only
        w, h = size
        return tv_tensors.KeyPoints(pts, canvas_size=(h, w))


def has_intensities(df: pd.DataFrame, aus) -> bool:
    """Whether ``df`` has an ``AUxx_intensity`` column for any of ``aus``."""
    return any(f"{au_column(n)}_intensity" in df.columns for n in aus)


def intensity_targets(df: pd.DataFrame, aus) -> np.ndarray:
    """frames × AUs float32 of the manifest's ``AUxx_intensity`` columns, NaN where unknown and
    for an AU without a column (BP4D codes five AUs' intensities); a manifest with none of them
    is one HivaError naming the fix."""
    cols = [f"{au_column(n)}_intensity" for n in aus]
    if not has_intensities(df, aus):
        raise HivaError(
            f"model intensity is on, but the manifest has no intensity labels (no "
            f"{cols[0]} … column for AUs {', '.join(map(str, aus))}); import a set with "
            "intensities (DISFA, BP4D with its AU_INT codes, `hiva data synth`, a CSV with "
            "AUxx_intensity columns) or set model.intensity off")
    out = np.full((len(df), len(cols)), np.nan, np.float32)
    for j, c in enumerate(cols):
        if c in df.columns:
            out[:, j] = df[c].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def _size(img) -> tuple[int, int]:
    """(width, height) of a PIL image or a C×H×W tensor."""
    return img.size if not hasattr(img, "shape") else (img.shape[-1], img.shape[-2])


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
