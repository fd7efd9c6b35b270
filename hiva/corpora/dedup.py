"""Deduplication of descriptions, per AU: exact (normalised-text hash), then near-duplicates by
MinHash LSH over word n-grams (datasketch, streaming, first occurrence kept).

Used by generation (between rounds and in the final pass over all shards) and by corpus merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hiva.config import check_config
from hiva.corpora.schema import normalise_text, text_hash

if TYPE_CHECKING:
    import pandas as pd


def dedup_rules(threshold: float, num_perm: int = 128, ngram: int = 2, seed: int = 1,
                key: str = "threshold") -> list[tuple[bool, str]]:
    """The rules a dedup setting must meet, for ``hiva.config.check_config``; ``key`` names the
    threshold as the calling config does (``--dedup-threshold`` in generate)."""
    return [
        (0.0 < threshold <= 1.0,
         f"{key} must be in (0, 1] (a Jaccard similarity), got {threshold}"),
        (num_perm >= 16, f"num_perm must be ≥ 16, got {num_perm}"),
        (ngram >= 1, f"ngram must be ≥ 1, got {ngram}"),
        (seed >= 0, f"the MinHash seed must be ≥ 0, got {seed}"),
    ]


@dataclass(frozen=True)
class DedupConfig:
    minhash: bool = True
    threshold: float = 0.7  # estimated Jaccard of word-bigram sets above which rows are merged
    num_perm: int = 128
    ngram: int = 2
    seed: int = 1

    def __post_init__(self):
        check_config("dedup", dedup_rules(self.threshold, self.num_perm, self.ngram, self.seed))


def shingles(text: str, n: int) -> set[bytes]:
    words = normalise_text(text).split()
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


class NearDupIndex:
    """Streaming near-duplicate filter for one group (one AU): ``add`` returns False for a
    near-duplicate of something already kept.

    MinHash signatures come from datasketch; the LSH banding (b bands of r rows, chosen by
    datasketch for the threshold) is kept lean: one set of band hashes per band instead of
    datasketch's key-to-signature tables, which cost ~5 KB per key and made 1M rows need GBs.
    Like ``MinHashLSH.query``, a shared band means a duplicate (no second Jaccard check).
    """

    def __init__(self, cfg: DedupConfig):
        from datasketch import MinHash, MinHashLSH

        self._cfg = cfg
        self._MinHash = MinHash
        params = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        self._b, self._r = params.b, params.r
        self._bands: list[set[int]] = [set() for _ in range(self._b)]

    def add(self, text: str) -> bool:
        m = self._MinHash(num_perm=self._cfg.num_perm, seed=self._cfg.seed)
        m.update_batch(list(shingles(text, self._cfg.ngram)))
        hv = m.hashvalues
        r = self._r
        keys = [hash(hv[i * r : (i + 1) * r].tobytes()) for i in range(self._b)]
        if any(k in band for k, band in zip(keys, self._bands)):
            return False
        for k, band in zip(keys, self._bands):
            band.add(k)
        return True


def dedup_frame(df: pd.DataFrame, cfg: DedupConfig, group: str = "au") -> tuple[pd.DataFrame, dict]:
    """Keep the first occurrence of each text per ``group``; return (kept rows, counts).

    counts = {"input": n, "exact_duplicates": n, "near_duplicates": n, "kept": n}.
    Row order decides which copy survives, so callers sort deterministically first.
    """
    hashes = df["text_hash"] if "text_hash" in df else df["text"].map(text_hash)
    keep = []
    seen: set[tuple] = set()
    exact = near = 0
    indexes: dict = {}
    for g, h, text in zip(df[group].tolist(), hashes.tolist(), df["text"].tolist()):
        if (g, h) in seen:
            exact += 1
            keep.append(False)
            continue
        seen.add((g, h))
        if cfg.minhash:
            idx = indexes.get(g)
            if idx is None:
                idx = indexes[g] = NearDupIndex(cfg)
            if not idx.add(text):
                near += 1
                keep.append(False)
                continue
        keep.append(True)
    kept = df[keep].reset_index(drop=True)
    return kept, {
        "input": len(df),
        "exact_duplicates": exact,
        "near_duplicates": near,
        "kept": len(kept),
    }
