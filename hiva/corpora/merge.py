"""Union of corpora with the generation stage's dedup across them (``hiva corpus merge``).

Reads corpora (any spec ``load_corpus`` takes); writes a corpus folder (``data/train-*.parquet``,
``_manifest.json``, ``_config.yaml``). Rows keep their own llm/template/prompt columns, so every
row still says where it came from; sources are listed in the manifest. The first corpus given
wins a duplicate. ``text_hash`` is recomputed from each row's text (a hand-edited row keeps a
stale hash). Inputs of older schema versions this hiva reads are written as current rows
(the columns they lack null), so the merge has the current schema version. An existing corpus at
``--out`` is replaced only with ``overwrite``; a folder hiva did not write, never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hiva.config import check_config, config_dict, config_hash
from hiva.corpora.dedup import DedupConfig, dedup_frame, dedup_rules
from hiva.corpora.io import check_schema_version, load_corpus, read_corpus_manifest, write_corpus
from hiva.corpora.schema import CORPUS_KIND, SCHEMA_VERSION, check_out_dir, remove_corpus, text_hash
from hiva.errors import HivaError
from hiva.runtime import writable_dir


@dataclass(frozen=True)
class MergeConfig:
    sources: tuple[str, ...] = ()
    out: str = ""
    minhash: bool = True
    threshold: float = 0.7
    num_perm: int = 128
    ngram: int = 2
    overwrite: bool = False  # replace a corpus already at out

    def __post_init__(self):
        if isinstance(self.sources, str):  # one corpus named in a YAML file: refused below
            object.__setattr__(self, "sources", (self.sources,))
        check_config("merge", [
            (len(self.sources) >= 2,
             "merge needs at least two corpora: hiva corpus merge A B --out C"),
            (all(str(s).strip() for s in self.sources), "a corpus to merge is named by an empty "
                                                        "text; pass corpus folders or Hub ids"),
            (bool(str(self.out).strip()), "merge needs --out FOLDER for the merged corpus"),
            *dedup_rules(self.threshold, self.num_perm, self.ngram, key="--threshold"),
        ])

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(minhash=self.minhash, threshold=self.threshold,
                           num_perm=self.num_perm, ngram=self.ngram)


def run(cfg: MergeConfig) -> dict[str, Any]:
    import pandas as pd

    out = Path(cfg.out)
    if any(out.resolve() == Path(s).resolve() for s in cfg.sources if Path(s).exists()):
        raise HivaError(f"--out {out} is one of the inputs; write the merge to a new folder")
    state = check_out_dir(out)  # a file, or a folder hiva did not write: refused here
    if state == "corpus" and not cfg.overwrite and not _unfinished(out):
        raise HivaError(f"--out {out} already holds a corpus; add --overwrite to replace it, or "
                        "pass another --out")

    frames, sources, versions = [], [], {}
    for s in cfg.sources:
        df = load_corpus(s)
        m = read_corpus_manifest(s) if Path(s).is_dir() else {}
        versions[str(s)] = check_schema_version(s, df, m)
        frames.append(df)
        sources.append({"spec": str(s), "rows": int(len(df)),
                        "llm": m.get("llm") or (sorted(df["llm"].unique().tolist()) if len(df)
                                                else None),
                        "llm_fingerprint": m.get("llm_fingerprint"),
                        "config_hash": m.get("config_hash"),
                        "created_at": m.get("created_at"),
                        "schema_version": versions[str(s)]})
    # Each input is of a version this hiva reads (load_corpus refuses others) and comes back
    # with every current column (older versions' missing ones null), so they merge into a
    # corpus of the current version; each source's own version is listed in the manifest.
    # Stable order: by source then the source's own order (so the first corpus wins), then
    # sorted per AU for a deterministic file.
    allrows = pd.concat(frames, ignore_index=True)
    # Dedup reads the text, never a stored hash: a row edited by hand keeps its old hash.
    fresh = allrows["text"].astype(str).map(text_hash)
    stale = int((allrows["text_hash"].astype(str) != fresh).sum())
    allrows["text_hash"] = fresh
    kept, counts = dedup_frame(allrows, cfg.dedup_config())
    counts["text_hash_recomputed"] = stale
    kept = kept.sort_values("au", kind="stable").reset_index(drop=True)
    # Distinct rows may share a row_id only if the same row is in two inputs; exact dedup took it.
    per_au = {int(k): int(v) for k, v in kept["au"].value_counts().sort_index().items()}
    llms = sorted(kept["llm"].astype(str).unique().tolist())
    manifest = {
        "kind": CORPUS_KIND,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "merged": True,
        "config": config_dict(cfg),
        "config_hash": config_hash(cfg, ("overwrite",)),
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
        "text_hash_recomputed": stale,  # rows whose stored text_hash did not match their text
    }
    writable_dir(out, "--out")
    if state == "corpus":
        remove_corpus(out)  # only what hiva wrote; checked above, after every input loaded
    write_corpus(out, kept, manifest, cfg)  # a rerun recognises a merge killed half way
    return manifest


def _unfinished(out: Path) -> bool:
    """A merge into ``out`` was killed before its manifest was written."""
    try:
        return bool(read_corpus_manifest(out).get("unfinished"))
    except (OSError, ValueError):
        return False
