"""Packed training sets (``hiva data pack``): every frame of a manifest decoded once, padded to a
square and resized, and stored as uint8 pixels in NumPy shards that training maps into memory
instead of decoding image files at every step.

A pack is a folder: ``shard-00000.npy`` … (N×S×S×3 uint8, one row a frame), beside each a
``shard-00000.marks.npy`` when the manifest has landmarks (the frame's landmarks, and those of
its neutral face, moved by the same padding and resize), ``pack.json`` (the size, the padding's
fill, each shard's rows, SHA-256 and unreadable frames) and ``manifest.parquet``: the source
manifest's rows (same subjects, labels and metadata, so the same folds) with ``pack_file`` and
``pack_row`` columns, and its landmark columns in the pack's pixels.

What is stored is exactly what the training and evaluation transforms make of an image before
their first random step (``hiva.data.transforms.pad_resize``: pad to a square, resize). Those
steps do nothing to an image already square at that size, so a pack of size ``resize`` (the
trainer's ``resize_to``: 256 for 224-pixel inputs) gives the same tensors, and for the same seed
the same batches, as the images themselves (a test). ``AUDataset`` reads a pack manifest as it
reads any other.

Resumable: a shard is written under a ``.partial`` name, hashed, then renamed and recorded in
``pack.json``; a rerun checks each recorded shard's hash and writes only what is missing or
damaged. ``verify_pack`` checks a finished pack (after copying it to another machine).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.runtime import atomic_write, claim_dir, file_sha256, release_dir, write_text_atomic

INDEX = "pack.json"
MANIFEST = "manifest.parquet"
FORMAT = 1
IMAGENET_FILL = (124, 116, 104)  # the ImageNet mean in 0..255: what the trainer pads with
MARK_COLUMNS = ("landmarks", "landmarks_neutral")


def shard_name(j: int) -> str:
    return f"shard-{j:05d}.npy"


def marks_name(j: int) -> str:
    return f"shard-{j:05d}.marks.npy"


def read_index(folder: Path) -> dict | None:
    """``pack.json`` of ``folder`` when it is a pack's (any version), else None."""
    try:
        d = json.loads((Path(folder) / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("kind") == "hiva-pack" else None


def _taken(p: Path) -> list[str]:
    names = [n for n in (INDEX, MANIFEST) if (p / n).exists()]
    return names + sorted(x.name for x in p.glob("shard-*.npy*"))


class _Frames:
    """``frames[i]`` → (i, S×S×3 uint8 or None, marks 2×K×2 float32 or None, padded, reason):
    frame ``i`` through ``pad_resize`` with its landmarks. For DataLoader workers (picklable)."""

    def __init__(self, df, size: int, fill, scheme: str | None):
        from torchvision.transforms import v2

        from hiva.data.dataset import AUDataset
        from hiva.data.transforms import pad_resize

        self.ds = AUDataset(df, (), scheme=scheme)
        self.size, self.fill = int(size), tuple(int(v) for v in fill)
        self.steps = v2.Compose(pad_resize(self.fill, self.size))

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        ds = self.ds
        try:
            img = ds.load(i)
        except (OSError, ValueError, SyntaxError) as e:
            return i, None, None, False, f"unreadable ({type(e).__name__})"
        w, h = img.size
        inputs = [img]
        if ds.landmarks is not None:
            inputs.append(ds.keypoints(ds.landmarks[i], img.size))
            if ds.neutral is not None:
                inputs.append(ds.keypoints(ds.neutral[i], img.size))
        out = self.steps(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        pixels = out[0].permute(1, 2, 0).numpy()
        if pixels.shape != (self.size, self.size, 3):
            return i, None, None, False, f"resized to {pixels.shape} (not square)"
        marks = None
        if len(out) > 1:
            marks = np.stack([np.asarray(k, np.float32) for k in out[1:]])
        return i, pixels, marks, w != h, ""


def _as_is(item):
    return item


def _source_key(manifest: Path, size: int, fill, shard_size: int) -> str:
    h = hashlib.sha256(Path(manifest).read_bytes())
    h.update(json.dumps([FORMAT, int(size), list(fill), int(shard_size)]).encode())
    return h.hexdigest()


def _shard_ok(folder: Path, entry: dict) -> bool:
    files = [(entry["file"], entry["sha256"])]
    if entry.get("marks"):
        files.append((entry["marks"], entry["marks_sha256"]))
    return all((folder / f).is_file() and file_sha256(folder / f) == s for f, s in files)


def _write_shard(folder: Path, j: int, rows: list[int], frames: _Frames, workers: int,
                 bar) -> dict:
    """Shard ``j``: frames ``rows`` decoded (by ``workers`` processes), written, hashed and put
    in place; its ``pack.json`` entry."""
    from torch.utils.data import DataLoader

    size = frames.size
    tmp = folder / (shard_name(j) + ".partial")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                    shape=(len(rows), size, size, 3))
    marks = None
    bad: dict[str, str] = {}
    padded = 0
    loader = DataLoader(frames, batch_size=None, sampler=rows, num_workers=workers,
                        collate_fn=_as_is)
    for k, (i, pixels, m, was_padded, why) in enumerate(loader):
        if pixels is None:
            bad[str(i)] = why
        else:
            arr[k] = pixels
            padded += bool(was_padded)
            if m is not None:
                if marks is None:
                    marks = np.full((len(rows),) + m.shape, np.nan, np.float32)
                marks[k] = m
        bar.update(1)
    arr.flush()
    del arr
    entry = {"file": shard_name(j), "rows": len(rows), "first": rows[0], "bad": bad,
             "padded": padded}
    if marks is not None:
        def save(p: Path) -> None:
            with open(p, "wb") as f:  # a file object: np.save would append .npy to a name
                np.save(f, marks)

        atomic_write(folder / marks_name(j), save)
        entry.update(marks=marks_name(j), marks_sha256=file_sha256(folder / marks_name(j)))
    entry["sha256"] = file_sha256(tmp)
    os.replace(tmp, folder / shard_name(j))
    return entry


def pack_manifest(manifest: str | Path, out: str | Path, size: int = 256,
                  fill=IMAGENET_FILL, shard_size: int = 2048, workers: int = 2,
                  progress: bool = True) -> dict:
    """Pack the frames of ``manifest`` into the folder ``out`` (see the module); returns a
    summary {frames, skipped, shards, reused, padded, bytes, manifest}."""
    from tqdm import tqdm

    from hiva.data.manifest import read_manifest

    if not 32 <= int(size) <= 1024:
        raise HivaError(f"--size {size} is outside 32..1024; use the trainer's resize (256 for "
                        "224-pixel inputs)")
    if len(fill) != 3 or not all(0 <= int(v) <= 255 for v in fill):
        raise HivaError(f"--fill {fill} must be three values in 0..255 (R,G,B)")
    if shard_size < 1:
        raise HivaError("--shard-size must be ≥ 1")
    df = read_manifest(manifest)
    if "pack_file" in df.columns:
        raise HivaError(f"{manifest} is a pack's manifest already; pack the manifest it came "
                        "from")
    kind = "`hiva data pack`"
    folder = claim_dir(out, "--out", kind, lambda p: read_index(p) is not None, _taken)
    key = _source_key(Path(manifest), size, fill, shard_size)
    index = read_index(folder)
    if index is None or index.get("source_key") != key:  # new, or packed from something else
        for name in _taken(folder):
            (folder / name).unlink()
        index = {"kind": "hiva-pack", "format": FORMAT, "size": int(size),
                 "fill": [int(v) for v in fill], "shard_size": int(shard_size),
                 "source": str(Path(manifest).resolve()), "source_key": key, "frames": len(df),
                 "shards": {}, "complete": False}
    scheme = (df.attrs.get("hiva") or {}).get("landmark_scheme")
    frames = _Frames(df, size, fill, scheme)
    starts = range(0, len(df), shard_size)
    done = {int(j): e for j, e in index["shards"].items() if _shard_ok(folder, e)}
    reused = len(done)
    todo = sum(min(shard_size, len(df) - s) for j, s in enumerate(starts) if j not in done)
    with tqdm(total=todo, desc="packing", unit="img", disable=not progress) as bar:
        for j, s in enumerate(starts):
            if j in done:
                continue
            rows = list(range(s, min(s + shard_size, len(df))))
            done[j] = _write_shard(folder, j, rows, frames, workers, bar)
            index["shards"] = {str(k): done[k] for k in sorted(done)}
            write_text_atomic(folder / INDEX, json.dumps(index, indent=1))
    path = _write_pack_manifest(folder, df, index, done, Path(manifest))
    index["complete"] = True
    write_text_atomic(folder / INDEX, json.dumps(index, indent=1))
    release_dir(folder)
    bad = {int(i): why for e in done.values() for i, why in e["bad"].items()}
    return {"frames": len(df) - len(bad), "skipped": len(bad),
            "skipped_example": (df["path"].iloc[min(bad)], bad[min(bad)]) if bad else None,
            "shards": len(done), "reused": reused,
            "padded": sum(e["padded"] for e in done.values()),
            "bytes": sum((folder / e["file"]).stat().st_size for e in done.values()),
            "manifest": path}


def _write_pack_manifest(folder: Path, df, index: dict, done: dict, source: Path) -> Path:
    import pandas as pd

    from hiva.data.manifest import manifest_meta, write_manifest

    out = df.copy()
    shard_size = index["shard_size"]
    pos = np.arange(len(df))
    out["pack_file"] = [shard_name(j) for j in pos // shard_size]
    out["pack_row"] = pos % shard_size
    bad = {int(i) for e in done.values() for i in e["bad"]}
    cols = [(c, col) for c, col in enumerate(MARK_COLUMNS) if col in out.columns]
    if cols and any(e.get("marks") for e in done.values()):
        moved: dict[str, list] = {col: [] for _, col in cols}
        for j in sorted(done):  # each shard's marks read once, for every column
            e = done[j]
            m = np.load(folder / e["marks"]) if e.get("marks") else None
            for c, col in cols:  # float32 arrays: a BP4D-sized pack has 146k rows
                moved[col] += [None if m is None or m.shape[1] <= c else m[k, c].reshape(-1)
                               for k in range(e["rows"])]
        for col, rows in moved.items():
            out[col] = pd.Series(rows, index=out.index, dtype=object)
    keep = np.array([i not in bad for i in range(len(df))], dtype=bool)
    meta = manifest_meta(source)
    meta["pack"] = {"size": index["size"], "fill": index["fill"], "source": str(source),
                    "skipped": len(bad)}
    return write_manifest(out[keep], folder / MANIFEST, meta)


def verify_pack(folder: str | Path) -> list[str]:
    """The shards of a finished pack whose files are missing or whose SHA-256 differs from
    ``pack.json``'s (empty: the pack is whole)."""
    folder = Path(folder)
    index = read_index(folder)
    if index is None or not index.get("complete"):
        raise HivaError(f"{folder} is not a finished pack (no complete {INDEX}); run `hiva data "
                        "pack MANIFEST --out FOLDER` (a rerun finishes a stopped one)")
    return [e["file"] for _, e in sorted(index["shards"].items(), key=lambda kv: int(kv[0]))
            if not _shard_ok(folder, e)]


def pack_warnings(df, fill, resize: int) -> list[str]:
    """Lines on how a pack ``df`` (a pack manifest's rows) differs from what the trainer would
    make of its images: another resize (its frames are resized again), or another padding fill
    when some frames were padded. Empty for any other manifest, or a pack that matches."""
    if "pack_file" not in df.columns or not len(df):
        return []
    folder = Path(df["pack_file"].iloc[0]).parent
    index = read_index(folder)
    if index is None:
        raise HivaError(f"{folder} has no readable {INDEX}: the pack is incomplete or was moved "
                        "without it; rerun `hiva data pack`")
    out = []
    if int(index["size"]) != int(resize):
        out.append(f"warning: the pack {folder} holds {index['size']}-pixel frames and training "
                   f"resizes to {resize}: each frame is resized again (pack with --size {resize} "
                   "for the images' own pixels)")
    padded = sum(int(e.get("padded", 0)) for e in index["shards"].values())
    if padded and [int(v) for v in index["fill"]] != [int(v) for v in fill]:
        shown = ",".join(str(int(v)) for v in fill)
        out.append(f"warning: {padded} frames of the pack {folder} were padded to a square with "
                   f"{','.join(map(str, index['fill']))}, and this backbone pads with {shown}; "
                   f"pack again with --fill {shown}")
    return out
