"""Corpus helpers for tests/embed (imported as tests.embed.helpers)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from hiva.corpora.schema import CORPUS_SCHEMA, SCHEMA_VERSION, data_file, text_hash

WORDS = ("the inner outer brow brows raise raised lip lips corner corners pull pulled up down "
         "upward downward cheek cheeks eye eyes lid lids tighten nose wrinkle chin jaw drop mouth "
         "open press stretch a of and is are face skin slight strong").split()


def write_corpus(folder, rows):
    """rows: list of (au, text). Writes a corpus folder with CORPUS_SCHEMA."""
    from hiva.facs import AUS

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cols = {f.name: [] for f in CORPUS_SCHEMA}
    for i, (au, text) in enumerate(rows):
        name = AUS[au].name if au in AUS else "?"  # an AU FACS lacks: a bad row to test
        vals = dict(row_id=f"r{i:05d}-{text_hash(text)[:8]}-{au}", au=au, au_name=name,
                    text=text, text_hash=text_hash(text), template_id="t", template_hash="h",
                    axes="{}", llm="test", llm_fingerprint="x", backend="none", temperature=0.7,
                    top_p=0.9, seed=0, sample_idx=0, prompt_hash="p", shard=0, created_at=now,
                    schema_version=SCHEMA_VERSION, judge_score=None, judge_reason=None,
                    judge=None)
        for k in cols:
            cols[k].append(vals[k])
    table = pa.table(cols, schema=CORPUS_SCHEMA)
    path = folder / data_file(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    (folder / "_manifest.json").write_text("{}")
    return folder


def make_rows(n_per_au=12, aus=(1, 2, 12)):
    import random

    rng = random.Random(0)
    rows = []
    for au in aus:
        seen = set()
        while len([r for r in rows if r[0] == au]) < n_per_au:
            t = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))
            if t not in seen:
                seen.add(t)
                rows.append((au, t))
    return rows
