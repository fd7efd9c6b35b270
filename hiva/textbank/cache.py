"""The embedding cache: each exact text encoded once per encoder, ever.

``CACHE/<encoder identity hash>/part-*.safetensors``, each part holding the sha1 keys of the
exact texts and their vectors. Parts are written atomically (``hiva.runtime.atomic_write``, then
fsync) every ``flush_every`` batches and verified on read (length + sha256 in the header
metadata); a corrupt or truncated part is deleted and its texts are encoded again. Killing a run
loses at most the unflushed batches. The embed stage and the names bank share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from hiva.runtime import atomic_write, write_text_atomic

PART_GLOB = "part-*.safetensors"


def text_key(text: str) -> str:
    # Keyed on the exact text (not the lower-cased, punctuation-free dedup form): the encoder sees
    # case and punctuation, so two texts with one normalised form may embed differently.
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def is_leftover(tmp: Path) -> bool:
    """Whether ``tmp`` (``<name>.tmp<pid>`` from ``atomic_write``, or an older ``<name>.tmp``)
    is left by a killed write: its writer is no live process here. A live writer's temp file is
    kept (two runs may share a cache)."""
    pid = tmp.name.rpartition(".tmp")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def remove_leftovers(folder: Path, pattern: str = "*.tmp*") -> None:
    for tmp in folder.glob(pattern):
        if is_leftover(tmp):
            tmp.unlink(missing_ok=True)


class EmbeddingCache:
    """Content-addressed vectors for one encoder identity, in atomically written parts."""

    def __init__(self, root: str | Path, identity: dict, identity_hash: str, dim: int):
        self.dir = Path(root) / identity_hash
        self.dir.mkdir(parents=True, exist_ok=True)
        ident = self.dir / "identity.json"
        if not ident.exists():
            write_text_atomic(ident, json.dumps(identity, indent=1, sort_keys=True))
        self.dim = dim
        self.vectors: dict[str, Any] = {}
        self.dropped: list[str] = []  # parts found corrupt and deleted
        self._load()

    def _load(self) -> None:
        from safetensors import safe_open
        from safetensors.numpy import load_file

        for part in sorted(self.dir.glob(PART_GLOB)):
            try:
                with safe_open(str(part), "np") as f:
                    meta = f.metadata() or {}
                t = load_file(str(part))
                keys = bytes(t["keys"]).decode("ascii")
                vecs = t["vectors"]
                n = int(meta["n"])
                ok = (
                    vecs.shape == (n, self.dim)
                    and len(keys) == 40 * n
                    and hashlib.sha256(vecs.tobytes() + keys.encode()).hexdigest() == meta["sha256"]
                )
            except Exception:
                ok = False
            if not ok:
                self.dropped.append(part.name)
                part.unlink(missing_ok=True)
                continue
            for i in range(n):
                self.vectors[keys[40 * i:40 * i + 40]] = vecs[i]
        remove_leftovers(self.dir)  # temp files of a killed write

    def put(self, keys: list[str], vecs) -> None:
        import numpy as np
        from safetensors.numpy import save_file

        if not keys:
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        blob = "".join(keys)
        meta = {"n": str(len(keys)),
                "sha256": hashlib.sha256(vecs.tobytes() + blob.encode()).hexdigest()}
        tensors = {"vectors": vecs, "keys": np.frombuffer(blob.encode("ascii"), dtype=np.uint8)}

        def write(tmp: Path) -> None:
            save_file(tensors, str(tmp), metadata=meta)
            with open(tmp, "rb") as f:  # on disk before the rename makes it a part
                os.fsync(f.fileno())

        atomic_write(self.dir / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.safetensors",
                     write)
        for k, v in zip(keys, vecs):
            self.vectors[k] = v


def encode_texts(encoder, texts: list[str], cache: EmbeddingCache, batch_size: int,
                 flush_every: int, progress: bool = True):
    """Vectors [len(texts), dim] for ``texts``, encoding only those the cache lacks; returns
    (vectors, number of texts encoded)."""
    import numpy as np
    from tqdm.auto import tqdm

    keys = [text_key(t) for t in texts]
    todo: dict[str, str] = {}
    for k, t in zip(keys, texts):
        if k not in cache.vectors and k not in todo:
            todo[k] = t
    # Length-sorted across the whole run (the encoder sorts only within one call): chunks then
    # pad to similar lengths, which keeps throughput at the raw encoder's.
    items = sorted(todo.items(), key=lambda kv: len(kv[1]))
    chunk = max(1, batch_size * flush_every)
    quiet = not progress or not items
    with tqdm(total=len(items), desc="embed", unit="text", disable=quiet) as bar:
        for i in range(0, len(items), chunk):
            part = items[i:i + chunk]
            vecs = encoder.encode([t for _, t in part], batch_size=batch_size)
            cache.put([k for k, _ in part], vecs)
            bar.update(len(part))
    out = np.empty((len(texts), cache.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = cache.vectors[k]
    return out, len(items)
