"""The description corpus schema (one row per kept description).

A corpus folder holds ``part-*.parquet`` files with this schema plus ``manifest.json`` and
``config.yaml``; work in progress lives in ``.staging/`` (hidden, so ``pandas.read_parquet(DIR)``
and ``datasets.load_dataset("parquet", data_dir=DIR)`` see only the finished corpus).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pyarrow as pa

SCHEMA_VERSION = 1

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("row_id", pa.string(), nullable=False),  # hash of (prompt, sample, text)
        pa.field("au", pa.int16(), nullable=False),
        pa.field("au_name", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_hash", pa.string(), nullable=False),  # sha1 of normalise_text(text)
        pa.field("template_id", pa.string(), nullable=False),
        pa.field("template_hash", pa.string(), nullable=False),
        pa.field("axes", pa.string(), nullable=False),  # JSON object: axis name -> value
        pa.field("llm", pa.string(), nullable=False),
        pa.field("llm_fingerprint", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("temperature", pa.float32(), nullable=False),
        pa.field("top_p", pa.float32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("sample_idx", pa.int32(), nullable=False),
        pa.field("prompt_hash", pa.string(), nullable=False),
        pa.field("shard", pa.int32(), nullable=False),
        pa.field("created_at", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("schema_version", pa.int16(), nullable=False),
    ]
)

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalise_text(text: str) -> str:
    """The form used for exact dedup and for cache keys: NFKC, lower case, no punctuation,
    single spaces."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _PUNCT.sub(" ", t)
    return _WS.sub(" ", t).strip()


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise_text(text).encode()).hexdigest()
