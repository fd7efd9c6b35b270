"""Reading corpora: a local corpus folder, an exported folder, or a Hub dataset id, all through
``datasets.load_dataset`` so the same code serves local and shared corpora."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hiva.corpora.schema import CORPUS_SCHEMA, MANIFEST
from hiva.errors import HivaError

if TYPE_CHECKING:
    import pandas as pd


def load_corpus(spec: str | Path, config_name: str | None = None) -> pd.DataFrame:
    """Load a corpus as a DataFrame with the columns of ``CORPUS_SCHEMA``.

    ``spec`` is a corpus folder written by ``hiva generate-descriptions``
    (``data/train-*.parquet`` and ``_manifest.json``), a folder written by ``hiva corpus export``
    (``data/`` + README.md card), or a Hub
    dataset id ``owner/name``. ``config_name`` picks one config of an exported/Hub dataset.
    """
    import datasets

    p = Path(spec)
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
        raise HivaError(
            f"could not load corpus {spec} ({type(e).__name__}: {msg}); check the path or id, "
            "and for a Hub id that you are online and logged in (`hf auth login`)"
        ) from None
    # Parquet keeps timestamp[s] as [ms]; give every reader the exact CORPUS_SCHEMA types.
    if set(ds.column_names) == set(CORPUS_SCHEMA.names):
        feats = datasets.Features.from_arrow_schema(CORPUS_SCHEMA)
        if ds.features != feats:
            ds = ds.cast(feats)
    return ds.to_pandas()


def read_manifest(corpus_dir: str | Path) -> dict:
    """The generation manifest of a local corpus folder ({} when it has none)."""
    import json

    f = Path(corpus_dir) / MANIFEST
    return json.loads(f.read_text()) if f.exists() else {}
