"""The description corpus schema (one row per kept description) and folder layout.

A corpus folder holds::

    data/train-00000-of-00001.parquet   rows with CORPUS_SCHEMA (Hub naming: one "train" split)
    _manifest.json                      how it was made: config, LLM, counts, filters, dedup
    _config.yaml                        the resolved GenerateConfig
    .staging/                           work in progress (resume state)

Names starting with "_" or "." are skipped by pyarrow's dataset discovery and the ``data/train-*``
names are what ``datasets`` maps to a split, so both ``pandas.read_parquet(DIR)`` and
``datasets.load_dataset("parquet", data_dir=DIR)`` read exactly the corpus rows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pyarrow as pa

SCHEMA_VERSION = 1
DATA_DIR = "data"
MANIFEST = "_manifest.json"
CONFIG = "_config.yaml"


def data_file(i: int, n: int) -> str:
    return f"{DATA_DIR}/train-{i:05d}-of-{n:05d}.parquet"

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
