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
import json
import re
import shutil
import unicodedata
from pathlib import Path

import pyarrow as pa

from hiva.errors import HivaError

# Version 2 added the judge columns (judge_score, judge_reason, judge); version-1 corpora are
# still read, with those columns null (``hiva.corpora.io.upgrade_rows``).
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1, SCHEMA_VERSION)  # what this hiva reads
CORPUS_KIND = "hiva-description-corpus"  # the manifest's "kind": marks a folder hiva wrote
DATA_DIR = "data"
MANIFEST = "_manifest.json"
CONFIG = "_config.yaml"
STAGING = ".staging"


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
        # The optional judge pass (``hiva.pipeline.judge``); null where no judge ran.
        pa.field("judge_score", pa.int8(), nullable=True),  # 1..5; null: not judged/unparseable
        pa.field("judge_reason", pa.string(), nullable=True),  # the judge's one-sentence reason
        pa.field("judge", pa.string(), nullable=True),  # the judge model (its --judge name)
    ]
)
JUDGE_COLUMNS = ("judge_score", "judge_reason", "judge")
# The columns of each schema version this hiva reads (older ones are a prefix of the current).
SCHEMA_COLUMNS: dict[int, tuple[str, ...]] = {
    1: tuple(n for n in CORPUS_SCHEMA.names if n not in JUDGE_COLUMNS),
    2: tuple(CORPUS_SCHEMA.names),
}

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


def is_corpus_dir(path: str | Path) -> bool:
    """True for a folder hiva wrote as a corpus: its manifest says ``kind: CORPUS_KIND``, or a
    generation run left its ``.staging/config_hash`` stamp."""
    p = Path(path)
    if (p / STAGING / "config_hash").is_file():
        return True
    try:
        return json.loads((p / MANIFEST).read_text()).get("kind") == CORPUS_KIND
    except (OSError, ValueError, AttributeError):
        return False


def foreign_entries(path: str | Path) -> list[str]:
    """Names in ``path`` that are not part of the corpus layout (so hiva did not write them)."""
    p = Path(path)
    own = {DATA_DIR, MANIFEST, CONFIG, STAGING}
    out = sorted(e.name for e in p.iterdir() if e.name not in own)
    d = p / DATA_DIR
    if d.is_dir():
        out += sorted(f"{DATA_DIR}/{e.name}" for e in d.iterdir() if not _own_data_file(e.name))
    elif d.exists():
        out.append(DATA_DIR)
    return out


def _own_data_file(name: str) -> bool:
    """``data/train-*.parquet`` and the ``.tmp`` files of its atomic writes."""
    return name.startswith("train-") and (name.endswith(".parquet") or ".tmp" in name)


def check_out_dir(path: str | Path, flag: str = "--out") -> str:
    """Whether ``path`` may receive a corpus: "new" (missing or empty), "corpus" (one hiva
    wrote), else a HivaError naming what is in it. Nothing is changed."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise HivaError(f"{flag} {p} is a file; pass a folder for the corpus (a new one is made)")
    if not p.exists() or not any(p.iterdir()):
        return "new"
    if is_corpus_dir(p):
        return "corpus"
    if not foreign_entries(p) and not any((p / DATA_DIR).glob("train-*.parquet")):
        # Only hiva's own names and no data: a run just starting (another shard's .staging) or
        # what a killed removal left.
        return "corpus"
    names = foreign_entries(p) or sorted(e.name for e in p.iterdir())
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise HivaError(
        f"{flag} {p} is not a corpus folder made by hiva (it holds {shown}); hiva writes and "
        "replaces only its own corpus folders, so pass a new or empty folder"
    )


def remove_corpus(path: str | Path) -> list[str]:
    """Delete what hiva wrote in a corpus folder (data/train-*.parquet, the config, .staging,
    the manifest) and nothing else; returns the names removed. The markers go last, so a kill
    half way leaves a folder that is still recognised. Callers check ``is_corpus_dir``."""
    p = Path(path)
    removed = []
    for f in sorted((p / DATA_DIR).glob("train-*")):
        if f.is_file() and _own_data_file(f.name):
            f.unlink()
            removed.append(f"{DATA_DIR}/{f.name}")
    if (p / DATA_DIR).is_dir() and not any((p / DATA_DIR).iterdir()):
        (p / DATA_DIR).rmdir()
    if (p / CONFIG).is_file():
        (p / CONFIG).unlink()
        removed.append(CONFIG)
    if (p / STAGING).is_dir():
        shutil.rmtree(p / STAGING)
        removed.append(STAGING)
    if (p / MANIFEST).is_file():
        (p / MANIFEST).unlink()
        removed.append(MANIFEST)
    return removed
