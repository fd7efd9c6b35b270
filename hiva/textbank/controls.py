"""The control banks of the text ablations, built from the corpus bank so that they differ from it
in one thing only:

- ``shuffled``: every AU gets another AU's whole set of descriptions (a seeded derangement of the
  AU → bank assignment). The banks keep their wording, their spread and their relations to each
  other; only which AU they describe is wrong.
- ``random``: for every AU as many random unit vectors as it has descriptions (or
  ``rows`` per AU without a corpus), fixed by the seed and sampled per step exactly like the corpus.

Imports torch inside the functions.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation of 0..n-1 with no fixed point (the identity for n < 2)."""
    if n < 2:
        return list(range(n))
    rng = np.random.default_rng([seed, 7_368_787])
    while True:
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm.tolist()


def shuffled_bank(embeddings: dict, texts: dict | None, aus, seed: int):
    """(embeddings, texts, {au: the AU whose descriptions it got}) after the derangement."""
    aus = list(aus)
    perm = derangement(len(aus), seed)
    source = {a: aus[perm[i]] for i, a in enumerate(aus)}
    emb = {a: embeddings[source[a]] for a in aus}
    txt = {a: list(texts[source[a]]) for a in aus} if texts else None
    return emb, txt, source


def random_bank(aus, counts: dict[int, int], dim: int, seed: int) -> tuple[dict, str]:
    """({au: counts[au]×dim unit vectors}, fingerprint), the same for the same arguments."""
    import torch

    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 17)
    bank = {}
    for a in aus:
        v = torch.randn(int(counts[a]), dim, generator=g)
        bank[a] = torch.nn.functional.normalize(v, dim=-1)
    key = f"random:{seed}:{dim}:" + ",".join(f"{a}x{counts[a]}" for a in aus)
    return bank, hashlib.sha256(key.encode()).hexdigest()[:24]
