"""The control banks of the text ablations, and whitening, built from the corpus bank so that each
differs from it in one thing only:

- ``shuffled``: every AU gets another AU's whole set of descriptions (a seeded derangement of the
  AU → bank assignment). The banks keep their wording, their spread and their relations to each
  other; only which AU they describe is wrong.
- ``neighbour``: every AU gets the descriptions of the nearest *other* AU (cosine of the AUs'
  prototypes, the unit mean of their unit rows): the wrong content that is hardest to tell from
  the right one. Not a permutation: two AUs may read the same bank.
- ``random``: for every AU as many random unit vectors as it has descriptions (or ``rows`` per AU
  without a corpus), isotropic, fixed by the seed and sampled per step exactly like the corpus.
- ``random_cov``: the same counts, drawn with the corpus's geometry and no content: each AU's
  centre from N(μ, Σ_between) (the pooled mean and the covariance of the AUs' means), its rows
  from N(centre, Σ_within) (the pooled within-AU covariance), then unit-normalised.
- ``whiten_bank``: every row centred on the pooled mean and whitened with the (Ledoit-Wolf shrunk)
  pooled covariance of all AUs' rows together (so nothing per AU), then unit-normalised: the model
  then sees how the AUs differ relative to how much descriptions vary, not the common direction
  they share.

Imports torch inside the functions.
"""

from __future__ import annotations

import hashlib

import numpy as np


def fingerprint(key: str) -> str:
    """The short fingerprint (24 hex digits) a control bank records for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


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
    return _reassign(embeddings, texts, aus, deranged({a: a for a in aus}, aus, seed))


def prototypes(embeddings: dict, aus):
    """N×D: the unit mean of each AU's unit rows."""
    import torch
    import torch.nn.functional as F

    return torch.stack([F.normalize(F.normalize(embeddings[a].float(), dim=-1).mean(0), dim=0)
                        for a in aus])


def deranged(table: dict, aus, seed: int) -> dict:
    """``table`` ({au: anything}) with whole entries moved across AUs by ``derangement(seed)``:
    AU i gets the entry of the AU the shuffled bank of that seed gives it."""
    aus = list(aus)
    perm = derangement(len(aus), seed)
    return {a: table[aus[perm[i]]] for i, a in enumerate(aus)}


def nearest_other(embeddings: dict, aus) -> dict[int, int]:
    """{au: the other AU whose prototype is nearest (highest cosine)}; ties go to the lower AU."""
    aus = list(aus)
    if len(aus) < 2:
        raise ValueError("the neighbour control needs at least two AUs")
    p = prototypes(embeddings, aus)
    sim = (p @ p.T).double()
    sim.fill_diagonal_(-np.inf)
    return {a: aus[int(sim[i].argmax())] for i, a in enumerate(aus)}


def neighbour_bank(embeddings: dict, texts: dict | None, aus):
    """(embeddings, texts, {au: the AU whose descriptions it got}): each AU its nearest other's."""
    return _reassign(embeddings, texts, list(aus), nearest_other(embeddings, aus))


def _reassign(embeddings, texts, aus, source):
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
    return bank, fingerprint(f"random:{seed}:{dim}:" + ",".join(f"{a}x{counts[a]}" for a in aus))


def pooled_moments(embeddings: dict, aus):
    """(μ, Σ_between, Σ_within) of the unit rows, float64: the pooled mean; the covariance of
    the AUs' means about μ (each AU weighted once); the within-AU covariance pooled over AUs."""
    import torch
    import torch.nn.functional as F

    rows = {a: F.normalize(embeddings[a].double(), dim=-1) for a in aus}
    means = torch.stack([rows[a].mean(0) for a in aus])
    mu = means.mean(0)
    between = (means - mu).T @ (means - mu) / max(len(aus) - 1, 1)
    dev = torch.cat([rows[a] - rows[a].mean(0) for a in aus])
    within = dev.T @ dev / max(len(dev) - len(aus), 1)
    return mu, between, within


def _sqrt_psd(cov):
    import torch

    vals, vecs = torch.linalg.eigh(cov)
    return vecs * vals.clamp_min(0).sqrt()


def random_cov_bank(embeddings: dict, aus, seed: int) -> tuple[dict, str]:
    """({au: as many unit rows as the corpus gives it, drawn with the corpus's pooled between-
    and within-AU covariance}, fingerprint); the same for the same bank and seed."""
    import torch
    import torch.nn.functional as F

    aus = list(aus)
    mu, between, within = pooled_moments(embeddings, aus)
    lb, lw = _sqrt_psd(between), _sqrt_psd(within)
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 29)
    d = len(mu)
    bank = {}
    for a in aus:
        centre = mu + lb @ torch.randn(d, generator=g, dtype=torch.float64)
        n = len(embeddings[a])
        rows = centre + torch.randn(n, d, generator=g, dtype=torch.float64) @ lw.T
        bank[a] = F.normalize(rows, dim=-1).float()
    return bank, fingerprint(f"random_cov:{seed}:{_digest(embeddings, aus)}")


def whiten_bank(embeddings: dict, aus) -> dict:
    """{au: its rows whitened with the pooled statistics of all AUs' rows}: x ↦ unit(W(x̂ − μ)),
    x̂ the unit row, μ and Σ the mean and covariance of all rows pooled (no AU is told apart),
    W = Σ_LW^(-1/2) with Σ_LW the Ledoit-Wolf shrunk covariance (scikit-learn picks the
    shrinkage from the rows; a bank has fewer rows than dimensions, so the plain covariance has
    no inverse). A function of the pooled bank alone: permuting the AUs permutes the output."""
    import torch
    import torch.nn.functional as F
    from sklearn.covariance import ledoit_wolf

    aus = list(aus)
    x = torch.cat([F.normalize(embeddings[a].double(), dim=-1) for a in aus])
    xc = x - x.mean(0)
    cov, _ = ledoit_wolf(xc.numpy(), assume_centered=True)
    vals, vecs = torch.linalg.eigh(torch.from_numpy(cov))
    w = vecs / vals.clamp_min(vals.max() * 1e-12).sqrt()
    white = F.normalize(xc @ w @ vecs.T, dim=-1).float()
    out, i = {}, 0
    for a in aus:
        n = len(embeddings[a])
        out[a], i = white[i:i + n], i + n
    return out


def _digest(embeddings: dict, aus) -> str:
    h = hashlib.sha256()
    for a in aus:
        h.update(f"{a}:".encode())
        h.update(np.ascontiguousarray(embeddings[a].float().numpy()).tobytes())
    return h.hexdigest()[:16]
