"""An embed bundle on disk, read back: its file names (shared with the writer, the embed stage
``hiva embed``), the folders it spans (one, or the shards of a sharded run) and the
per-AU tensors the model reads (``load_text_bank``).

A bundle folder holds::

    embeddings.safetensors   "embeddings": float32 [rows, dim]
    index.parquet            row -> au, text_hash, row_id, text, kept (semantic dedup)
    manifest.json            encoder identity, dim, fingerprints, counts (has "bundle_version")
    config.yaml              the resolved EmbedConfig

A sharded run writes one such folder per shard, ``OUT/shard-00000-of-00004/`` …
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiva.errors import HivaError
from hiva.facs import parse_aus

EMBEDDINGS = "embeddings.safetensors"
INDEX = "index.parquet"
MANIFEST = "manifest.json"
CONFIG = "config.yaml"
BUNDLE_FILES = (EMBEDDINGS, INDEX, MANIFEST, CONFIG)
BUNDLE_VERSION = 1


@dataclass
class TextBank:
    """Per-AU description embeddings for the trainer."""

    aus: tuple[int, ...]
    embeddings: dict[int, Any]  # au -> torch.FloatTensor [M_au, D]
    texts: dict[int, list[str]]
    row_ids: dict[int, list[str]]
    encoder: str
    encoder_fingerprint: str
    dim: int
    fingerprint: str


def shard_dir(out: str | Path, index: int, num: int) -> Path:
    """The folder of shard ``index`` (0-based) of ``num`` under the bundle folder ``out``."""
    return Path(out) / f"shard-{index:05d}-of-{num:05d}"


def bundle_dirs(path: str | Path) -> list[Path]:
    """The folders that make up the bundle at ``path``: ``[path]``, or its shards in order once
    all of them are there; otherwise one line naming the run that is missing."""
    path = Path(path)
    if (path / MANIFEST).exists():
        return [path]
    shards = sorted(p for p in path.glob("shard-*-of-*") if (p / MANIFEST).exists())
    if not shards:
        raise HivaError(f"{path} holds no embedding bundle ({MANIFEST} missing); "
                        f"run `hiva embed --corpus ... --out {path}` first")
    n = int(shards[0].name.rsplit("-", 1)[1])
    if len(shards) != n:
        raise HivaError(f"{path} has {len(shards)} of {n} shards; run the missing "
                        "`hiva embed --shard-index I` runs first")
    return shards


def load_text_bank(path: str | Path, aus=None) -> TextBank:
    """Per-AU tensors from a bundle (or its shards); ``aus`` = AUs the model needs."""
    import pandas as pd
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    dirs = bundle_dirs(path)
    manifests, embs, idxs = [], [], []
    for d in dirs:
        try:
            manifests.append(json.loads((d / MANIFEST).read_text()))
            embs.append(load_file(str(d / EMBEDDINGS))["embeddings"].float())
            idxs.append(pd.read_parquet(d / INDEX))
        except Exception as e:
            raise HivaError(f"embedding bundle {d} is unreadable ({type(e).__name__}); "
                            "rerun `hiva embed` for it (the cache makes this fast)") from None
    if len({m["encoder_fingerprint"] for m in manifests}) > 1:
        raise HivaError(f"shards under {path} were made with different encoders; rerun them "
                        "with one --encoder")
    emb = torch.cat(embs)
    index = pd.concat(idxs, ignore_index=True)
    index = index[index["kept"]] if "kept" in index else index
    rows = index.index.to_numpy()
    have = sorted(int(a) for a in index["au"].unique())
    if aus is None:
        want = tuple(have)
    else:
        want = parse_aus(aus) if isinstance(aus, str) else tuple(int(a) for a in aus)
    lacking = [a for a in want if a not in have]
    if lacking:
        raise HivaError(
            f"embedding bundle {path} has no descriptions for AU(s) "
            f"{', '.join(map(str, lacking))}; generate them (`hiva generate-descriptions --aus "
            f"{','.join(map(str, lacking))}`) and rerun `hiva embed`, or train without them"
        )
    au_col = index["au"].to_numpy()
    embeddings, texts, row_ids = {}, {}, {}
    for a in want:
        sel = rows[au_col == a]
        embeddings[a] = emb[torch.as_tensor(sel)].contiguous()
        sub = index.loc[sel]
        texts[a] = sub["text"].tolist()
        row_ids[a] = sub["row_id"].tolist()
    fp = hashlib.sha256("".join(m["fingerprint"] for m in manifests).encode()).hexdigest()[:24]
    return TextBank(aus=tuple(want), embeddings=embeddings, texts=texts, row_ids=row_ids,
                    encoder=manifests[0]["encoder"],
                    encoder_fingerprint=manifests[0]["encoder_fingerprint"],
                    dim=int(manifests[0]["dim"]), fingerprint=fp)
