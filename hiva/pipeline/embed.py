"""`hiva embed`: encode a description corpus once per encoder, ever, into a bundle for the trainer.

Reads a corpus (``hiva.corpora.io.load_corpus``: folder or Hub id). Writes ``--out``::

    embeddings.safetensors   "embeddings": float32 [rows, dim]
    index.parquet            row -> au, text_hash, row_id, text, kept (semantic dedup)
    manifest.json            encoder identity, dim, dtype, normalised, corpus fingerprint, counts,
                             semantic dedup report, bundle fingerprint
    config.yaml              the resolved EmbedConfig

With ``--num-shards N --shard-index I`` the bundle goes to ``OUT/shard-I-of-N/``;
``load_text_bank(OUT)`` merges the shards it finds.

Cache: ``CACHE/<encoder identity hash>/part-*.safetensors``, each holding the sha1 keys of the exact
texts and their vectors. Parts are written atomically (tmp + os.replace) every ``flush_every``
batches and verified on read (length + sha256 in the header metadata); a corrupt or truncated part
is deleted and its texts are encoded again. Killing a run loses at most the unflushed batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiva.errors import HivaError
from hiva.runtime import cache_dir as default_cache_dir
from hiva.runtime import write_text_atomic

EMBEDDINGS = "embeddings.safetensors"
INDEX = "index.parquet"
MANIFEST = "manifest.json"
BUNDLE_VERSION = 1


@dataclass(frozen=True)
class EmbedConfig:
    corpus: str | None = None
    out: str = "out/embeddings"
    encoder: str | None = None  # None = shipped all-MiniLM-L6-v2; ST id/folder; clip:<id|folder>
    batch_size: int = 64
    device: str = "auto"
    dtype: str = "auto"  # auto (bf16 where the hardware has it) | bf16 | fp32
    max_length: int | None = None
    normalize: bool = True
    cache_dir: str | None = None  # default: $HIVA_CACHE or ~/.cache/hiva (XDG_CACHE_HOME)
    num_shards: int = 1
    shard_index: int = 0
    semantic_dedup: float | None = None  # cosine threshold, per AU, e.g. 0.95
    flush_every: int = 16  # batches between cache writes
    names_only: bool = False  # one "AU12 Lip Corner Puller" text per AU instead of a corpus
    aus: str | None = None  # names-only AU set (bp4d, disfa, all, 1,2,4)


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


def text_key(text: str) -> str:
    # Keyed on the exact text (not the lower-cased, punctuation-free dedup form): the encoder sees
    # case and punctuation, so two texts with one normalised form may embed differently.
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


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
        from safetensors.numpy import load_file

        for part in sorted(self.dir.glob("part-*.safetensors")):
            try:
                from safetensors import safe_open

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
        for tmp in self.dir.glob("*.tmp"):  # leftovers of a killed write
            tmp.unlink(missing_ok=True)

    def put(self, keys: list[str], vecs) -> None:
        import numpy as np
        from safetensors.numpy import save_file

        if not keys:
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        blob = "".join(keys)
        meta = {"n": str(len(keys)),
                "sha256": hashlib.sha256(vecs.tobytes() + blob.encode()).hexdigest()}
        final = self.dir / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.safetensors"
        tmp = final.with_suffix(".tmp")
        save_file({"vectors": vecs, "keys": np.frombuffer(blob.encode("ascii"), dtype=np.uint8)},
                  str(tmp), metadata=meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        for k, v in zip(keys, vecs):
            self.vectors[k] = v


def _shard_of(row_id: str, n: int) -> int:
    return int(hashlib.sha1(row_id.encode()).hexdigest()[:12], 16) % n


def names_texts(aus) -> list[tuple[int, str]]:
    from hiva.facs import AUS

    return [(a, f"{AUS[a].code} {AUS[a].name}") for a in aus]


def encode_texts(encoder, texts: list[str], cache: EmbeddingCache, batch_size: int,
                 flush_every: int, progress: bool = True):
    """Vectors [len(texts), dim] for ``texts``, encoding only those the cache lacks."""
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


def semantic_dedup(emb, aus, threshold: float) -> tuple[Any, dict]:
    """Greedy per-AU dedup: a row is dropped when an earlier kept row of the same AU has cosine
    ≥ ``threshold``. Returns (kept mask, report)."""
    import numpy as np

    kept = np.ones(len(aus), dtype=bool)
    report = {"threshold": threshold, "dropped_per_au": {}}
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    for a in sorted(set(int(x) for x in aus)):
        idx = np.flatnonzero(aus == a)
        keep_vecs = np.zeros((0, emb.shape[1]), dtype=np.float32)
        dropped = 0
        for i in idx:  # per AU sets are thousands of rows; kept-set matmuls stay cheap
            v = unit[i]
            if len(keep_vecs) and float((keep_vecs @ v).max()) >= threshold:
                kept[i] = False
                dropped += 1
            else:
                keep_vecs = np.vstack([keep_vecs, v[None]])
        report["dropped_per_au"][str(a)] = dropped
    report["dropped"] = int((~kept).sum())
    return kept, report


def run(cfg: EmbedConfig) -> dict:
    """Embed a corpus (or the AU names) into a bundle under ``cfg.out``; returns the manifest."""
    import numpy as np
    import pandas as pd

    from hiva.config import config_dict, write_config
    from hiva.pipeline.encoders import load_encoder

    if cfg.num_shards < 1 or not 0 <= cfg.shard_index < cfg.num_shards:
        raise HivaError(f"--shard-index {cfg.shard_index} must be in 0..{cfg.num_shards - 1} "
                        "and --num-shards ≥ 1")
    if cfg.batch_size < 1 or cfg.flush_every < 1:
        raise HivaError("--batch-size and flush_every must be ≥ 1")
    if cfg.semantic_dedup is not None and not 0 < cfg.semantic_dedup <= 1:
        raise HivaError(
            f"--semantic-dedup {cfg.semantic_dedup}: pass a cosine in (0, 1], e.g. 0.95"
        )

    _prepare_bundle_dir(cfg, create=False)  # a file or another tool's files: before any work

    if cfg.names_only:
        from hiva.facs import parse_aus

        pairs = names_texts(parse_aus(cfg.aus or "all"))
        df = pd.DataFrame({"au": [a for a, _ in pairs], "text": [t for _, t in pairs]})
        df["row_id"] = [f"name-AU{a}" for a in df["au"]]
        corpus_fp = "names:" + ",".join(map(str, df["au"]))
    else:
        if not cfg.corpus:
            raise HivaError("no corpus given; pass --corpus DIR|HUB_ID (or --names-only)")
        from hiva.corpora.io import load_corpus

        df = load_corpus(cfg.corpus)
        missing = {"au", "text", "row_id"} - set(df.columns)
        if missing:
            raise HivaError(f"corpus {cfg.corpus} lacks column(s) {', '.join(sorted(missing))}; "
                            "pass a corpus made by `hiva generate-descriptions`")
        ids = df["row_id"].astype(str)
        corpus_fp = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:24]
    n_total = len(df)
    bad = df["text"].isna() | (df["text"].astype(str).str.strip() == "")
    df = df[~bad].copy()
    if cfg.num_shards > 1:
        df = df[[_shard_of(r, cfg.num_shards) == cfg.shard_index for r in df["row_id"]]]
    df = df.sort_values("row_id", kind="stable").reset_index(drop=True)
    df["au"] = df["au"].astype(int)
    df["text_hash"] = [text_key(t) for t in df["text"]]

    out = _prepare_bundle_dir(cfg)  # created and write-tested once the corpus has loaded
    enc = load_encoder(cfg.encoder, device=cfg.device, dtype=cfg.dtype, max_length=cfg.max_length,
                       normalize=cfg.normalize)
    cache = EmbeddingCache(cfg.cache_dir or default_cache_dir(), enc.identity, enc.identity_hash,
                           enc.dim)
    emb, n_encoded = encode_texts(enc, df["text"].tolist(), cache, cfg.batch_size,
                                  cfg.flush_every)

    kept = np.ones(len(df), dtype=bool)
    dedup_report = None
    if cfg.semantic_dedup is not None:
        kept, dedup_report = semantic_dedup(emb, df["au"].to_numpy(), cfg.semantic_dedup)
    df["kept"] = kept

    from safetensors.numpy import save_file

    tmp = out / (EMBEDDINGS + ".tmp")
    save_file({"embeddings": emb}, str(tmp))
    os.replace(tmp, out / EMBEDDINGS)
    index = df[["au", "text_hash", "row_id", "text", "kept"]].copy()
    index.insert(0, "row", np.arange(len(index), dtype=np.int64))
    index.to_parquet(out / (INDEX + ".tmp"), index=False)
    os.replace(out / (INDEX + ".tmp"), out / INDEX)
    bundle_fp = hashlib.sha256(emb.tobytes() + "\n".join(df["row_id"]).encode()
                               + kept.tobytes()).hexdigest()[:24]
    counts = {str(a): int(n) for a, n in df[df["kept"]].groupby("au").size().items()}
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "encoder": enc.name,
        "encoder_identity": enc.identity,
        "encoder_fingerprint": enc.identity_hash,
        "dim": enc.dim,
        "dtype": "float32",
        "compute_dtype": enc.identity["dtype"],
        "normalised": cfg.normalize,
        "corpus": cfg.corpus if not cfg.names_only else "names-only",
        "corpus_fingerprint": corpus_fp,
        "shard": [cfg.shard_index, cfg.num_shards],
        "rows_in_corpus": n_total,
        "rows_skipped_empty": int(bad.sum()),
        "rows": len(df),
        "rows_kept": int(kept.sum()),
        "texts_encoded": n_encoded,
        "texts_from_cache": len(set(df["text_hash"])) - n_encoded,
        "cache_parts_recomputed": cache.dropped,
        "count_per_au": counts,
        "semantic_dedup": dedup_report,
        "fingerprint": bundle_fp,
        "config": config_dict(cfg),
    }
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
    write_config(cfg, out / "config.yaml")
    return manifest


def _prepare_bundle_dir(cfg: EmbedConfig, create: bool = True) -> Path:
    """The folder this run writes, checked before any work: not a file, writable, and not
    holding files of ours' names that another tool wrote (a rerun replaces its own bundle)."""
    from hiva.runtime import require_dir_path, writable_dir

    out = require_dir_path(cfg.out, "--out")
    if cfg.num_shards > 1:
        out = require_dir_path(out / f"shard-{cfg.shard_index:05d}-of-{cfg.num_shards:05d}",
                               "--out")
    clash = [n for n in (EMBEDDINGS, INDEX, MANIFEST, "config.yaml") if (out / n).exists()]
    if clash:
        try:
            ours = "bundle_version" in json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError, TypeError):
            ours = False
        if not ours:
            raise HivaError(
                f"--out {out} holds {', '.join(clash)} that `hiva embed` did not write; pass a "
                "new or empty folder (a rerun of hiva embed replaces only its own bundle)"
            )
    return writable_dir(out, "--out") if create else out


def _bundle_dirs(path: Path) -> list[Path]:
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
    dirs = _bundle_dirs(path)
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
        from hiva.facs import parse_aus

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


def encode_names_bank(aus, encoder_spec: str | None = None, cache_dir: str | None = None,
                      **encoder_kwargs) -> TextBank:
    """A bank with one text per AU ("AU12 Lip Corner Puller") for the names-only ablation."""
    import torch

    from hiva.facs import parse_aus
    from hiva.pipeline.encoders import load_encoder

    aus = parse_aus(aus) if isinstance(aus, str) else tuple(int(a) for a in aus)
    enc = load_encoder(encoder_spec, **encoder_kwargs)
    cache = EmbeddingCache(cache_dir or default_cache_dir(), enc.identity, enc.identity_hash,
                           enc.dim)
    pairs = names_texts(aus)
    emb, _ = encode_texts(enc, [t for _, t in pairs], cache, 64, 16, progress=False)
    fp = hashlib.sha256(emb.tobytes()).hexdigest()[:24]
    return TextBank(aus=aus, embeddings={a: torch.from_numpy(emb[i:i + 1].copy())
                                         for i, (a, _) in enumerate(pairs)},
                    texts={a: [t] for a, t in pairs}, row_ids={a: [f"name-AU{a}"] for a in aus},
                    encoder=enc.name, encoder_fingerprint=enc.identity_hash, dim=enc.dim,
                    fingerprint=fp)


__all__ = ["EmbedConfig", "TextBank", "run", "load_text_bank", "encode_names_bank",
           "EmbeddingCache", "default_cache_dir"]
