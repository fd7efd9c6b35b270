"""Union of corpora with the generation stage's dedup across them (``hiva corpus merge``).

Reads corpora (any spec ``load_corpus`` takes); writes a corpus folder (``data/train-*.parquet``,
``_manifest.json``, ``_config.yaml``). Rows keep their own llm/template/prompt columns, so every
row still says where it came from; sources are listed in the manifest. The first corpus given
wins a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hiva.errors import HivaError


@dataclass(frozen=True)
class MergeConfig:
    sources: tuple[str, ...] = ()
    out: str = ""
    minhash: bool = True
    threshold: float = 0.7
    num_perm: int = 128
    ngram: int = 2


def run(cfg: MergeConfig) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.parquet as pq

    from hiva.config import config_dict, config_hash, write_config
    from hiva.corpora.hub import to_table
    from hiva.corpora.io import load_corpus, read_manifest
    from hiva.corpora.schema import CONFIG, MANIFEST, SCHEMA_VERSION, data_file
    from hiva.pipeline.dedup import DedupConfig, dedup_frame

    if len(cfg.sources) < 2:
        raise HivaError("merge needs at least two corpora: hiva corpus merge A B --out C")
    out = Path(cfg.out)
    if not cfg.out:
        raise HivaError("merge needs --out FOLDER for the merged corpus")
    if any(out.resolve() == Path(s).resolve() for s in cfg.sources if Path(s).exists()):
        raise HivaError(f"--out {out} is one of the inputs; write the merge to a new folder")
    try:
        dcfg = DedupConfig(minhash=cfg.minhash, threshold=cfg.threshold, num_perm=cfg.num_perm,
                           ngram=cfg.ngram)
    except ValueError as e:
        raise HivaError(f"bad dedup setting: {e}") from None

    frames, sources = [], []
    for s in cfg.sources:
        df = load_corpus(s)
        m = read_manifest(s) if Path(s).is_dir() else {}
        frames.append(df)
        sources.append({"spec": str(s), "rows": int(len(df)),
                        "llm": m.get("llm") or (sorted(df["llm"].unique().tolist()) if len(df)
                                                else None),
                        "llm_fingerprint": m.get("llm_fingerprint"),
                        "config_hash": m.get("config_hash"),
                        "created_at": m.get("created_at")})
    # Stable order: by source then the source's own order (so the first corpus wins), then
    # sorted per AU for a deterministic file.
    allrows = pd.concat(frames, ignore_index=True)
    kept, counts = dedup_frame(allrows, dcfg)
    kept = kept.sort_values("au", kind="stable").reset_index(drop=True)
    # Distinct rows may share a row_id only if the same row is in two inputs; exact dedup took it.
    per_au = {int(k): int(v) for k, v in kept["au"].value_counts().sort_index().items()}
    llms = sorted(kept["llm"].astype(str).unique().tolist())
    dest = out / data_file(0, 1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for old in dest.parent.glob("train-*.parquet"):
        old.unlink()  # a rerun replaces, never doubles
    tmp = dest.with_suffix(".tmp")
    pq.write_table(to_table(kept), tmp)
    tmp.rename(dest)
    manifest = {
        "kind": "hiva-description-corpus",
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "merged": True,
        "config": config_dict(cfg),
        "config_hash": config_hash(cfg),
        "llm": llms[0] if len(llms) == 1 else "+".join(llms),
        "llms": llms,
        "llm_fingerprint": None if len(llms) != 1 else sources[0].get("llm_fingerprint"),
        "backend": "+".join(sorted(kept["backend"].astype(str).unique().tolist())),
        "sources": sources,
        "aus": sorted(per_au),
        "rows": int(len(kept)),
        "rows_per_au": per_au,
        "rows_per_llm": {k: int(v) for k, v in kept["llm"].value_counts().items()},
        "filters": {},
        "dedup": counts,
    }
    write_config(cfg, out / CONFIG)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest
