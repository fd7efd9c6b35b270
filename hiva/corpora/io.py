"""Reading and writing corpora. Reading: a local corpus folder, an exported folder, or a Hub
dataset id, all through ``datasets.load_dataset`` so the same code serves local and shared corpora.
Writing: ``write_corpus``, the one writer of a corpus folder (generation's final pass and merge).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hiva.config import write_config
from hiva.corpora.schema import (
    CONFIG,
    CORPUS_KIND,
    CORPUS_SCHEMA,
    DATA_DIR,
    MANIFEST,
    SCHEMA_COLUMNS,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    data_file,
)
from hiva.errors import HivaError
from hiva.facs import AUS
from hiva.runtime import atomic_write, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

ROWS_PER_FILE = 100_000


def load_corpus(spec: str | Path, config_name: str | None = None) -> pd.DataFrame:
    """Load a corpus as a DataFrame with the columns of ``CORPUS_SCHEMA``.

    ``spec`` is a corpus folder written by ``hiva generate-descriptions``
    (``data/train-*.parquet`` and ``_manifest.json``), a folder written by ``hiva corpus export``
    (``data/`` + README.md card), or a Hub
    dataset id ``owner/name``. ``config_name`` picks one config of an exported/Hub dataset.
    """
    import datasets

    p = Path(spec)
    if p.is_dir():
        _check_local_rows(p, config_name)
    try:
        if p.is_dir():
            if any(p.glob("part-*.parquet")):
                ds = datasets.load_dataset(
                    "parquet",
                    data_files=sorted(str(f) for f in p.glob("part-*.parquet")),
                    split="train",
                )
            elif (p / "README.md").exists() or (p / "data").is_dir():
                ds = datasets.load_dataset(str(p), config_name, split="train")
            else:
                raise HivaError(
                    f"{p} holds no corpus (no {MANIFEST}, no data/); pass a folder made by "
                    "`hiva generate-descriptions` or `hiva corpus export`, or a Hub dataset id"
                )
        elif p.exists():
            raise HivaError(f"{p} is a file; pass the corpus folder that holds it")
        elif "/" in str(spec) and not str(spec).startswith((".", "/")):
            ds = datasets.load_dataset(str(spec), config_name, split="train")
        else:
            raise HivaError(f"corpus {spec} does not exist; pass a corpus folder or a Hub id")
    except HivaError:
        raise
    except Exception as e:  # datasets raises many types; the user needs one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if p.is_dir():  # a local folder: the Hub has nothing to do with it
            raise HivaError(
                f"could not load corpus {spec} ({type(e).__name__}: {msg}); check that its "
                "data/*.parquet files were written by hiva and are complete"
            ) from None
        raise HivaError(
            f"could not load corpus {spec} ({type(e).__name__}: {msg}); check the path or id, "
            "and for a Hub id that you are online and logged in (`hf auth login`)"
        ) from None
    # Parquet keeps timestamp[s] as [ms]; give every reader the exact CORPUS_SCHEMA types (of
    # the schema version whose columns these are).
    for cols in SCHEMA_COLUMNS.values():
        if set(ds.column_names) == set(cols):
            feats = datasets.Features.from_arrow_schema(
                pa.schema([CORPUS_SCHEMA.field(n) for n in cols]))
            if ds.features != feats:
                ds = ds.cast(feats)
    df = ds.to_pandas()
    check_schema_version(spec, df, read_corpus_manifest(p) if p.is_dir() else {})
    return skip_bad_rows(upgrade_rows(df), spec)


def skip_bad_rows(df: pd.DataFrame, spec) -> pd.DataFrame:
    """``df`` less the rows no reader can use, counted in ``df.attrs["skipped"]`` ({why: n})
    and said in one line on stderr: a description with no text, or one of an AU that FACS does
    not define (a corpus edited by hand, or written by another tool). The rest are kept."""
    text = df["text"]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    odd = ~df["au"].isin(list(AUS))
    why = {}
    if empty.any():
        why["no text"] = int(empty.sum())
    if odd.any():
        shown = ", ".join(map(str, sorted(set(df["au"][odd].tolist()))[:3]))
        why[f"an AU FACS does not define ({shown})"] = int(odd.sum())
    if not why:
        df.attrs["skipped"] = {}
        return df
    print(f"warning: corpus {spec}: skipped {int((empty | odd).sum())} of {len(df)} rows ("
          + "; ".join(f"{n} with {w}" for w, n in why.items())
          + "); fix or regenerate them", file=sys.stderr, flush=True)
    out = df[~(empty | odd)].reset_index(drop=True)
    out.attrs["skipped"] = why
    return out


def upgrade_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of an older schema version with the columns it lacks added, null (version 1 has no
    judge columns), typed as reading a current corpus with those columns null would type them.
    ``schema_version`` keeps what the rows were written with; ``to_table`` stamps the current
    one when they are written again (they then have every current column)."""
    missing = [f for f in CORPUS_SCHEMA if f.name not in df.columns and f.nullable]
    if not missing:
        return df
    nulls = pa.table({f.name: pa.nulls(len(df), f.type) for f in missing}).to_pandas()
    nulls.index = df.index
    return df.join(nulls)


def _local_parquet(p: Path, config_name: str | None) -> list[Path]:
    """The Parquet files ``load_corpus`` reads from the local folder ``p``."""
    if any(p.glob("part-*.parquet")):
        return sorted(p.glob("part-*.parquet"))
    data = p / "data"
    if config_name and (data / config_name).is_dir():
        return sorted((data / config_name).glob("*.parquet"))
    return sorted(data.rglob("*.parquet")) if data.is_dir() else []


def _check_local_rows(p: Path, config_name: str | None) -> None:
    """A local corpus with no Parquet file or no row gets its own message (``datasets`` fails
    on both with an error that suggests logging in)."""
    if not (p / MANIFEST).exists() and not (p / "README.md").exists() and \
            not (p / "data").is_dir() and not any(p.glob("part-*.parquet")):
        return  # not a corpus at all: load_corpus says so
    files = _local_parquet(p, config_name)
    if not files:
        raise HivaError(
            f"corpus {p} holds no Parquet files (expected data/train-*.parquet); pass a folder "
            "made by `hiva generate-descriptions` or `hiva corpus export`"
        )
    rows = 0
    for f in files:
        try:
            rows += pq.ParquetFile(f).metadata.num_rows
        except Exception as e:  # pyarrow raises ArrowInvalid, OSError...
            raise HivaError(f"corpus file {f} is not readable Parquet ({type(e).__name__}); "
                            "regenerate the corpus or remove the file") from None
    if rows == 0:
        m = read_corpus_manifest(p)
        said = []
        if m.get("candidates") is not None:
            said.append(f"generation made {m['candidates']} candidates")
        if m.get("filters"):
            said.append(f"filters dropped {sum(m['filters'].values())}")
        why = f" ({', '.join(said)})" if said else ""
        raise HivaError(
            f"corpus {p} has no rows{why}; generate it again with more --max-rounds or "
            "--samples-per-prompt (or another --llm), or pass another corpus"
        )


def check_schema_version(spec, df: pd.DataFrame, manifest: dict) -> int | None:
    """The corpus' schema version (None when it records none); a HivaError when it is one this
    hiva does not read, or when its rows mix versions."""
    found: dict[int, int] = {}
    if "schema_version" in df.columns and len(df):
        found = {int(v): int(n) for v, n in df["schema_version"].value_counts().items()}
    mv = manifest.get("schema_version")
    if mv is not None:
        try:
            found.setdefault(int(mv), 0)
        except (TypeError, ValueError):
            raise HivaError(f"corpus {spec}: {MANIFEST} has schema_version {mv!r}, not a "
                            "number; fix or regenerate the manifest") from None
    supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
    bad = sorted(v for v in found if v not in SUPPORTED_SCHEMA_VERSIONS)
    if bad:
        what = "; ".join(f"version {v}: {n} rows" if n else f"version {v} in {MANIFEST}"
                         for v, n in sorted(found.items()))
        raise HivaError(
            f"corpus {spec} has schema version {bad[0]} ({what}); this hiva reads schema "
            f"version{'s' if len(SUPPORTED_SCHEMA_VERSIONS) > 1 else ''} {supported}: upgrade "
            "hiva (`pip install -U hiva`) or pass a corpus it wrote"
        )
    if len(found) > 1:
        what = ", ".join(f"version {v}: {n} rows" for v, n in sorted(found.items()))
        raise HivaError(
            f"corpus {spec} mixes schema versions ({what}); regenerate it, or rewrite its rows "
            "to one version"
        )
    return next(iter(found), None)


def read_corpus_manifest(corpus_dir: str | Path) -> dict:
    """The generation manifest of a local corpus folder ({} when it has none)."""
    f = Path(corpus_dir) / MANIFEST
    return json.loads(f.read_text()) if f.exists() else {}


def to_table(df: pd.DataFrame):
    """The rows as a pyarrow table with exactly CORPUS_SCHEMA (column order and types), so
    with the current ``schema_version``: rows of an older version read by ``load_corpus`` have
    every current column (``upgrade_rows``) and are written as current rows."""
    missing = [f.name for f in CORPUS_SCHEMA if f.name not in df.columns]
    if missing:
        raise HivaError(
            f"corpus lacks column(s) {', '.join(missing)}; it was not written by "
            "`hiva generate-descriptions` (regenerate it or fix the Parquet files)"
        )
    df = df[[f.name for f in CORPUS_SCHEMA]].assign(schema_version=SCHEMA_VERSION)
    return pa.Table.from_pandas(df, schema=CORPUS_SCHEMA, preserve_index=False)


def write_corpus(out: str | Path, rows: pd.DataFrame, manifest: dict[str, Any], cfg: Any,
                 rows_per_file: int = ROWS_PER_FILE) -> None:
    """Write a corpus folder (layout in ``schema``): ``data/train-*.parquet`` with ``rows``
    (CORPUS_SCHEMA, ``rows_per_file`` rows a file), ``_config.yaml`` (``cfg``) and
    ``_manifest.json``, each file atomically. A marker manifest goes first and the real one last,
    so a write killed half way leaves a folder that says it is unfinished. ``out`` exists and
    was checked by the caller; data files of an earlier write are replaced."""
    out = Path(out)
    table = to_table(rows)
    write_text_atomic(out / MANIFEST, json.dumps({"kind": CORPUS_KIND, "unfinished": True}))
    for old in out.glob(f"{DATA_DIR}/train-*.parquet"):
        old.unlink()
    (out / DATA_DIR).mkdir(exist_ok=True)
    n_files = max(1, math.ceil(table.num_rows / rows_per_file))
    for i in range(n_files):
        part = table.slice(i * rows_per_file, rows_per_file)
        atomic_write(out / data_file(i, n_files), lambda p, part=part: pq.write_table(part, p))
    write_config(cfg, out / CONFIG)
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, default=str))
