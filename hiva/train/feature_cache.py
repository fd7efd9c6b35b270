"""A content-addressed cache of a frozen backbone's feature maps (heads-only training,
``model.freeze_backbone``).

Reads image files; writes one ``.npy`` (numpy's format, read back with ``allow_pickle=False``)
per (image, view) at ``ROOT/<first 2 hex of the key>/<key>.npy``. ROOT is the TrainConfig's
``feature_cache``, else ``hiva.runtime.cache_dir()/features``. The key (``feature_key``) hashes
what changes the features and nothing else: the image file's bytes (not its path or mtime), the
view spec (kind and id, input size, resize, normalisation mean/std, a version of this code), the
backbone's weights fingerprint (``backbone_fingerprint``: a hash over its state_dict tensors)
and the stored dtype. The compute device is not in it: features come from the backbone in eval
mode, in float32, without autocast, whatever the run's ``amp``.

Each file is written to a temp name and renamed (``hiva.runtime.atomic_write``), so a killed run
leaves no half file and a rerun computes only what is missing; processes that fill one cache at
once (sweep runs, DDP ranks) at worst compute a file twice and rename the same bytes into place.
An unreadable file (a half-written ``.npy`` cannot exist, but a damaged disk can) is a miss.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from hiva.data.image_files import as_rgb
from hiva.errors import HivaError
from hiva.runtime import atomic_write, cache_dir
from hiva.train.config import FEATURE_DTYPES

log = logging.getLogger(__name__)

# bump when the way features or views are computed changes: old keys then miss. 2: images are
# read by ``as_rgb`` (EXIF orientation, 16-bit grey scaled), as training and prediction read them
VERSION = 2
_UNREADABLE = (OSError, ValueError, SyntaxError)  # what PIL raises for a bad image file


def default_root() -> Path:
    return cache_dir() / "features"


def file_digest(data: bytes) -> str:
    """The content address of an image file: a hash of its bytes."""
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def read_image_info(path: str) -> tuple[str, tuple[int, int]] | None:
    """(digest of the file's bytes, (width, height) from its header), or None for a file that
    cannot be read or is not an image (counted and skipped like ``AUDataset``'s bad images).
    The header is parsed, the pixels are not decoded."""
    from PIL import Image

    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
    except _UNREADABLE as e:
        log.warning("skipping unreadable image %s (%s)", path, type(e).__name__)
        return None
    return file_digest(data), size


def backbone_fingerprint(backbone) -> str:
    """A hash over the backbone's state_dict tensors (names, dtypes, shapes, bytes; BatchNorm
    step counters, which change no output, left out) and the stage it returns."""
    import torch

    h = hashlib.blake2b(digest_size=20)
    h.update(repr((type(backbone).__name__, getattr(backbone, "stage", None))).encode())
    for name, t in sorted(backbone.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def feature_key(digest: str, view: dict, fingerprint: str, dtype: str) -> str:
    """The cache key of one (image, view): a hash over the image bytes' digest, the view spec,
    the backbone fingerprint, the stored dtype and ``VERSION``."""
    spec = {"version": VERSION, "image": digest, "view": view, "backbone": fingerprint,
            "dtype": dtype}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Feature maps C×h×w by key, stored as ``dtype`` (float16 halves the disk; the heads read
    them through one cast to float32, cached or just computed). ``hits``/``misses`` count the
    keys looked up and computed by this object."""

    def __init__(self, root: str | Path | None = None, dtype: str = "float16"):
        if dtype not in FEATURE_DTYPES:
            raise HivaError(f"feature dtype {dtype!r}: use {' or '.join(FEATURE_DTYPES)}")
        self.root = Path(root) if root else default_root()
        self.dtype = dtype
        self.hits = self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def read(self, key: str):
        """The stored tensor of ``key``, or None (absent or unreadable: compute it again)."""
        import torch

        try:
            arr = np.load(self.path(key), allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as e:
            log.warning("feature cache file %s is unreadable (%s); computing it again",
                        self.path(key), type(e).__name__)
            return None
        if arr.dtype != np.dtype(self.dtype):
            return None
        return torch.from_numpy(arr)

    def write(self, key: str, t) -> None:
        """Store ``t`` (already in the cache's dtype) atomically."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        arr = t.detach().to("cpu").contiguous().numpy()

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save(path) would append ".npy"
                np.save(f, arr, allow_pickle=False)

        atomic_write(p, save)

    def lookup(self, keys) -> tuple[dict, list[str]]:
        """({key: tensor} of the keys stored, [keys missing]); counts the hits."""
        got, missing = {}, []
        for key in keys:
            t = self.read(key)
            if t is None:
                missing.append(key)
            else:
                got[key] = t
        self.hits += len(got)
        return got, missing

    def compute(self, backbone, jobs: dict, device, batch_size: int, workers: int = 0,
                progress: bool = False, desc: str = "features") -> dict:
        """Run ``backbone`` (eval mode, no grad, float32) over ``jobs`` = {key: (path, digest,
        transform)} in batches of about ``batch_size`` maps (an image's views decode once), store
        each map under its key and return {key: tensor}. A file whose bytes are unreadable or no
        longer match ``digest`` is left out (logged)."""
        import torch
        from torch.utils.data import DataLoader
        from tqdm import tqdm

        if not jobs:
            return {}
        keys = list(jobs)
        by_image: dict[tuple[str, str], list] = {}
        for j, k in enumerate(keys):
            path, digest, tf = jobs[k]
            by_image.setdefault((path, digest), []).append((j, tf))
        images = [(p, dg, views) for (p, dg), views in by_image.items()]
        per = max(1, round(len(keys) / len(images)))
        # Its own generator: a loader seeds its workers from the global stream otherwise, and a
        # cold run would then draw other dropout masks than a warm one.
        loader = DataLoader(_ViewImages(images), batch_size=max(1, batch_size // per),
                            num_workers=workers, collate_fn=_collate,
                            pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(0))
        dtype = getattr(torch, self.dtype)
        was_training = backbone.training
        backbone.eval()
        out = {}
        bar = tqdm(total=len(images), desc=desc, unit="img", disable=not progress,
                   dynamic_ncols=True)
        try:
            with torch.no_grad():
                for batch in loader:
                    if "image" in batch:
                        feats = backbone(batch["image"].to(device, non_blocking=True))
                        _check_range(feats, dtype)
                        feats = feats.to(dtype).cpu()
                        for j, f in zip(batch["job"].tolist(), feats):
                            f = f.contiguous().clone()
                            self.write(keys[j], f)
                            out[keys[j]] = f
                    bar.update(batch["n"])
        finally:
            bar.close()
            backbone.train(was_training)
        self.misses += len(out)
        return out


def _check_range(feats, dtype) -> None:
    """float16 holds ±65504: a backbone whose maps go beyond would be cached as inf."""
    import torch

    if dtype == torch.float16 and float(feats.abs().max()) > 65504:
        raise HivaError(f"this backbone's feature maps reach {float(feats.abs().max()):.3g}, "
                        "beyond float16; set feature_dtype float32")


class _ViewImages:
    """Decode each image of the cache misses once and apply its views' transforms
    (DataLoader workers may run it): items (path, digest, [(job, transform)])."""

    def __init__(self, images: list[tuple]):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        path, digest, views = self.images[i]
        try:
            data = Path(path).read_bytes()
            if file_digest(data) != digest:
                raise ValueError("the file changed since it was hashed")
            with Image.open(io.BytesIO(data)) as im:
                img = as_rgb(im)
        except _UNREADABLE as e:
            log.warning("skipping unreadable image %s (%s)", path, type(e).__name__)
            return None
        return {"image": torch.stack([tf(img) for _, tf in views]),
                "job": torch.tensor([j for j, _ in views])}


def _collate(items):
    import torch

    good = [x for x in items if x is not None]
    out = {k: torch.cat([x[k] for x in good]) for k in ("image", "job")} if good else {}
    out["n"] = len(items)
    return out
