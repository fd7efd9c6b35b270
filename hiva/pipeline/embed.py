"""`hiva embed`: encode a description corpus once per encoder, ever, into a bundle for the trainer.

Reads a corpus (``hiva.corpora.io.load_corpus``: folder or Hub id). Writes ``--out``::

    embeddings.safetensors   "embeddings": float32 [rows, dim]
    index.parquet            row -> au, text_hash, row_id, text, kept (semantic dedup)
    manifest.json            encoder identity, dim, dtype, normalised, corpus fingerprint, counts,
                             semantic dedup report, bundle fingerprint
    config.yaml              the resolved EmbedConfig

With ``--num-shards N --shard-index I`` the bundle goes to ``OUT/shard-I-of-N/``;
``hiva.textbank.load_text_bank(OUT)`` merges the shards it finds. With ``--launcher local|slurm
--num-shards N`` this command runs every shard itself (``run_launched``, hiva/pipeline/shards.py).

This stage only writes. Reading a bundle, its file names, the embedding cache
(``CACHE/<encoder identity hash>/part-*.safetensors``, verified atomic parts: a kill loses at
most the unflushed batches) and the names bank live in ``hiva.textbank``. Every file is written
through ``hiva.runtime.atomic_write``: readers see the old bundle or the new, never half.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiva.config import check_config, config_dict, count_rule, write_config
from hiva.errors import HivaError
from hiva.facs import parse_aus
from hiva.pipeline.shards import Launch, check_launch, launch_shards
from hiva.runtime import (
    DTYPES,
    atomic_write,
    check_claim,
    claim_dir,
    holding,
    release_dir,
    require_dir_path,
    writable_dir,
    write_text_atomic,
)
from hiva.runtime import cache_dir as default_cache_dir
from hiva.textbank import load_text_bank
from hiva.textbank.bundle import (
    BUNDLE_FILES,
    BUNDLE_VERSION,
    CONFIG,
    EMBEDDINGS,
    INDEX,
    MANIFEST,
    shard_dir,
)
from hiva.textbank.cache import EmbeddingCache, encode_texts, remove_leftovers, text_key
from hiva.textbank.encoders import load_encoder
from hiva.textbank.names import name_row_id, names_texts

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
LAUNCH_DIR = ".launch"  # --launcher: the shards' logs, locks and config file


def _aus_ok(spec: Any) -> bool:
    try:
        parse_aus(spec)
    except (HivaError, AttributeError):
        return False
    return True


@dataclass(frozen=True)
class EmbedConfig:
    corpus: str | None = None
    out: str = "out/embeddings"
    encoder: str | None = None  # None = shipped all-MiniLM-L6-v2; ST id/folder; clip:<id|folder>
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | mps | cuda | cuda:N
    dtype: str = "auto"  # auto (bf16 where the hardware has it) | bf16 | fp16 | fp32
    max_length: int | None = None
    normalize: bool = True
    cache_dir: str | None = None  # default: $HIVA_CACHE or ~/.cache/hiva (XDG_CACHE_HOME)
    num_shards: int = 1
    shard_index: int = 0
    semantic_dedup: float | None = None  # cosine threshold, per AU, e.g. 0.95
    flush_every: int = 16  # batches between cache writes
    names_only: bool = False  # one "AU12 Lip Corner Puller" text per AU instead of a corpus
    aus: str | None = None  # names-only AU set (bp4d, disfa, all, 1,2,4)

    def __post_init__(self) -> None:
        def text(v: Any) -> bool:
            return isinstance(v, (str, Path)) and bool(str(v).strip())

        n = self.num_shards
        shards = count_rule("num_shards", n)
        dedup = self.semantic_dedup
        check_config("embed", [
            (self.names_only or text(self.corpus),
             "corpus is missing: pass --corpus DIR|HUB_ID (or --names-only)"),
            (text(self.out), "out is empty: pass --out with a folder for the bundle"),
            (self.encoder is None or text(self.encoder),
             "encoder is empty: pass a model folder, a Hub id or clip:<id|folder>, or leave it "
             "out for the shipped all-MiniLM-L6-v2"),
            count_rule("batch_size", self.batch_size),
            (isinstance(self.device, str) and _DEVICE.fullmatch(self.device) is not None,
             f"device {self.device!r} must be auto, cpu, mps, cuda or cuda:N"),
            (self.dtype in DTYPES, f"dtype {self.dtype!r} must be one of {', '.join(DTYPES)}"),
            count_rule("max_length (tokens)", self.max_length, none="the encoder's own"),
            (isinstance(self.normalize, bool), f"normalize must be true or false, got "
             f"{self.normalize!r}"),
            (self.cache_dir is None or text(self.cache_dir),
             "cache_dir is empty: pass a folder (or leave it out for $HIVA_CACHE or "
             "~/.cache/hiva)"),
            shards,
            (not shards[0] or (count_rule("shard_index", self.shard_index, low=0)[0]
                               and self.shard_index < n),
             f"shard_index must be in 0..{n - 1 if shards[0] else 0} (one run per shard), "
             f"got {self.shard_index!r}"),
            (dedup is None or (isinstance(dedup, (int, float)) and not isinstance(dedup, bool)
                               and 0 < dedup <= 1),
             f"semantic_dedup {dedup!r} must be a cosine in (0, 1], e.g. 0.95 (or left out)"),
            count_rule("flush_every (batches)", self.flush_every),
            (self.aus is None or self.names_only,
             "aus is for --names-only (a corpus brings its own AUs); drop it or add --names-only"),
            (self.aus is None or _aus_ok(self.aus),
             f"aus {self.aus!r} must be an AU set (bp4d, disfa, all) or numbers such as 1,2,4,12"),
        ])


def _shard_of(row_id: str, n: int) -> int:
    return int(hashlib.sha1(row_id.encode()).hexdigest()[:12], 16) % n


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


def _rows(cfg: EmbedConfig):
    """The rows this run embeds (this shard's, the usable ones, sorted by row id) as a frame
    with au, text, row_id, text_hash; and the corpus fingerprint, its row count, and the rows
    skipped, {why: n} (``hiva.corpora.io.skip_bad_rows``: no text, an AU FACS lacks)."""
    import pandas as pd

    if cfg.names_only:
        pairs = names_texts(parse_aus(cfg.aus or "all"))
        df = pd.DataFrame({"au": [a for a, _ in pairs], "text": [t for _, t in pairs]})
        df["row_id"] = [name_row_id(a) for a in df["au"]]
        corpus_fp = "names:" + ",".join(map(str, df["au"]))
    else:
        from hiva.corpora.io import load_corpus

        df = load_corpus(cfg.corpus)
        missing = {"au", "text", "row_id"} - set(df.columns)
        if missing:
            raise HivaError(f"corpus {cfg.corpus} lacks column(s) {', '.join(sorted(missing))}; "
                            "pass a corpus made by `hiva generate-descriptions`")
        ids = df["row_id"].astype(str)
        corpus_fp = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:24]
    skipped = dict(df.attrs.get("skipped") or {})
    n_total = len(df) + sum(skipped.values())
    if cfg.num_shards > 1:
        df = df[[_shard_of(r, cfg.num_shards) == cfg.shard_index for r in df["row_id"]]]
    df = df.sort_values("row_id", kind="stable").reset_index(drop=True)
    df["au"] = df["au"].astype(int)
    df["text_hash"] = [text_key(t) for t in df["text"]]
    return df, corpus_fp, n_total, skipped


def run(cfg: EmbedConfig) -> dict:
    """Embed a corpus (or the AU names) into a bundle under ``cfg.out``; returns the manifest.
    ``cfg`` has checked itself (``EmbedConfig.__post_init__``); this checks the files."""
    import numpy as np
    from safetensors.numpy import save_file

    _prepare_bundle_dir(cfg, create=False)  # a file or another tool's files: before any work
    df, corpus_fp, n_total, skipped = _rows(cfg)

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

    for name in BUNDLE_FILES:  # temp files of a killed earlier run of ours
        remove_leftovers(out, f"{name}.tmp*")
    atomic_write(out / EMBEDDINGS, lambda p: save_file({"embeddings": emb}, str(p)))
    index = df[["au", "text_hash", "row_id", "text", "kept"]].copy()
    index.insert(0, "row", np.arange(len(index), dtype=np.int64))
    atomic_write(out / INDEX, lambda p: index.to_parquet(p, index=False))
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
        "rows_skipped": skipped,
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
    write_config(cfg, out / CONFIG)
    release_dir(out)  # the bundle is whole
    return manifest


# Settings that do not change a shard's bundle: a shard made with other values of these is done.
_NOT_COMPARED = ("out", "shard_index", "cache_dir", "flush_every")


def _settings(config: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k not in _NOT_COMPARED}


def run_launched(cfg: EmbedConfig, opts: Launch) -> dict:
    """``--launcher``: every shard whose bundle is missing or was made with other settings as
    a ``--shard-index I`` job (hiva/pipeline/shards.py; logs in ``OUT/.launch/``), then the
    merge ``hiva train`` does (``load_text_bank``) as the check that all shards fit together.
    Returns the merged counts, or ``{"status": "failed", "code": N}``."""
    out = require_dir_path(cfg.out, "--out")
    target = check_launch("embed", cfg, out / LAUNCH_DIR, opts)
    if (out / MANIFEST).exists():
        raise HivaError(f"--out {out} holds a bundle made without shards; pass another --out for "
                        "the shards, or drop --launcher")
    writable_dir(out, "--out")
    want = _settings(config_dict(cfg))
    n = cfg.num_shards

    def done(i: int) -> bool:
        try:
            m = json.loads((shard_dir(out, i, n) / MANIFEST).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(m, dict) and _settings(m.get("config") or {}) == want

    code = launch_shards("embed", cfg, out / LAUNCH_DIR, opts, target, done)
    if code:
        return {"status": "failed", "code": code}
    load_text_bank(out)  # the merge: all shards there, readable, of one encoder
    ms = [json.loads((shard_dir(out, i, n) / MANIFEST).read_text()) for i in range(n)]
    per_au: dict[str, int] = {}
    for m in ms:
        for a, k in m["count_per_au"].items():
            per_au[a] = per_au.get(a, 0) + k
    return {"status": "done", "rows": sum(m["rows"] for m in ms), "dim": ms[0]["dim"],
            "texts_encoded": sum(m["texts_encoded"] for m in ms),
            "texts_from_cache": sum(m["texts_from_cache"] for m in ms),
            "count_per_au": per_au, "shards": n}


def _is_bundle(out: Path) -> bool:
    try:
        return "bundle_version" in json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError, TypeError):
        return False


def _prepare_bundle_dir(cfg: EmbedConfig, create: bool = True) -> Path:
    """The folder this run writes, checked before any work: not a file, writable, and not
    holding files of ours' names that another tool wrote (a rerun replaces its own bundle, and
    takes back one a killed run left half written: ``hiva.runtime.claim_dir``)."""
    out = require_dir_path(cfg.out, "--out")
    if cfg.num_shards > 1:
        out = require_dir_path(shard_dir(out, cfg.shard_index, cfg.num_shards), "--out")
    rule = (out, "--out", "`hiva embed`", _is_bundle, holding(BUNDLE_FILES))
    return claim_dir(*rule) if create else check_claim(*rule)


__all__ = ["EmbedConfig", "run", "run_launched", "semantic_dedup"]
