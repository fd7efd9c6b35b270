"""A hand-built corpus folder in the generate-descriptions layout (rows known in advance)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from hiva.corpora.schema import (
    CONFIG,
    CORPUS_SCHEMA,
    MANIFEST,
    SCHEMA_COLUMNS,
    SCHEMA_VERSION,
    data_file,
    text_hash,
)


def make_rows(texts_by_au: dict[int, list[str]], llm: str = "llm-a", axes=None) -> list[dict]:
    rows = []
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for au, texts in texts_by_au.items():
        for i, t in enumerate(texts):
            rows.append({
                "row_id": f"{llm}-{au}-{i}", "au": au, "au_name": f"AU{au}", "text": t,
                "text_hash": text_hash(t), "template_id": f"tpl-{llm}", "template_hash": "th",
                "axes": json.dumps(axes[i % len(axes)] if axes else {"perspective": "clinical"}),
                "llm": llm, "llm_fingerprint": f"fp-{llm}", "backend": "transformers",
                "temperature": 0.8, "top_p": 0.95, "seed": 1, "sample_idx": i,
                "prompt_hash": "ph", "shard": 0, "created_at": t0,
                "schema_version": SCHEMA_VERSION,
                "judge_score": None, "judge_reason": None, "judge": None,
            })
    return rows


def write_corpus(path, rows, llm="llm-a", dedup=None, version=SCHEMA_VERSION):
    """``version`` 1: the layout of schema version 1 (no judge columns), as an older hiva
    wrote it."""
    import pandas as pd
    import pyarrow as pa

    df = pd.DataFrame(rows)
    schema = CORPUS_SCHEMA
    if version != SCHEMA_VERSION:
        schema = pa.schema([CORPUS_SCHEMA.field(n) for n in SCHEMA_COLUMNS[version]])
        df = df[list(schema.names)].assign(schema_version=version)
    f = path / data_file(0, 1)
    f.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False), f)
    per = {int(k): int(v) for k, v in df["au"].value_counts().items()}
    (path / MANIFEST).write_text(json.dumps({
        "schema_version": version, "config": {"per_au": 3}, "config_hash": "abc123",
        "llm": llm, "llm_fingerprint": f"fp-{llm}", "backend": "transformers",
        "sampling": {"temperature": 0.8, "top_p": 0.95}, "templates": {f"tpl-{llm}": "th"},
        "axes": ["perspective"], "aus": sorted(per), "rows": len(df), "rows_per_au": per,
        "filters": {"too_short": 2}, "dedup": dedup or {"input": 10, "exact_duplicates": 1,
                                                         "near_duplicates": 1, "kept": 8},
        "created_at": "2026-01-01T00:00:00+00:00"}))
    (path / CONFIG).write_text("per_au: 3\n")
    return path


TEXTS_A = {
    1: ["the inner ends of the eyebrows rise toward the forehead",
        "inner brows lift and wrinkle the centre of the forehead",
        "a worried look as the inner brow corners go up"],
    12: ["the lip corners pull up and back into a broad smile",
         "zygomaticus major draws the mouth corners obliquely upward",
         "a smile that also shows AU6 around the eyes"],
}
TEXTS_B = {
    1: ["the inner ends of the eyebrows rise toward the forehead!",  # exact dup of A (normalised)
        "the frontalis lifts the inner ends of both brows sharply"],
    12: ["cheeks bunch while the corners of the lips curl upward happily"],
}


@pytest.fixture
def corpus_a(tmp_path):
    return write_corpus(tmp_path / "a", make_rows(TEXTS_A, "llm-a"), "llm-a")


@pytest.fixture
def corpus_b(tmp_path):
    return write_corpus(tmp_path / "b", make_rows(TEXTS_B, "llm-b"), "llm-b")


@pytest.fixture
def tools():
    """make_rows / write_corpus for tests that build their own corpus."""
    from types import SimpleNamespace

    return SimpleNamespace(make_rows=make_rows, write_corpus=write_corpus)
