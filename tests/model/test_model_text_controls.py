"""The controls that isolate what the descriptions say (issue 29): whitening with pooled
statistics only, the nearest-other-AU bank, the covariance-matched random bank; and that each
loads as a text mode with its own fingerprint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.textbank import load_text
from hiva.textbank.controls import (
    nearest_other,
    neighbour_bank,
    pooled_moments,
    prototypes,
    random_cov_bank,
    whiten_bank,
)
from tests.predict.helpers import write_text_bank


def _structured_bank(aus, per_au, dim=24, seed=0, spread=0.3):
    """Unit rows around AU centres that share a common direction, as sentence embeddings do."""
    g = torch.Generator().manual_seed(seed)
    common = F.normalize(torch.randn(dim, generator=g), dim=0) * 2.0 * dim**0.5
    out = {}
    for a in aus:
        centre = common + torch.randn(dim, generator=g)
        out[a] = F.normalize(centre + spread * torch.randn(per_au, dim, generator=g), dim=-1)
    return out


def test_whitening_uses_pooled_statistics_only():
    aus = (1, 2, 4, 6)
    bank = _structured_bank(aus, 9)
    white = whiten_bank(bank, aus)
    order = (6, 1, 4, 2)  # the same rows listed with the AUs permuted
    again = whiten_bank({a: bank[a] for a in order}, order)
    for a in aus:
        torch.testing.assert_close(white[a], again[a], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(white[a].norm(dim=-1), torch.ones(9))
    renamed = whiten_bank({10 + i: bank[a] for i, a in enumerate(aus)},
                          [10 + i for i in range(4)])  # AU identities carry nothing either
    for i, a in enumerate(aus):
        torch.testing.assert_close(white[a], renamed[10 + i], atol=1e-5, rtol=1e-5)
    # the common direction is gone: prototypes no longer sit close together
    raw, wp = prototypes(bank, aus), prototypes(white, aus)
    off = ~torch.eye(4, dtype=torch.bool)
    assert (raw @ raw.T)[off].mean() > 0.5 > (wp @ wp.T)[off].mean()


def test_neighbour_reads_the_nearest_other_au():
    aus = (1, 2, 4, 6)
    e = torch.eye(8)
    bank = {1: F.normalize(e[0] + 0.1 * e[1], dim=0)[None].repeat(3, 1),
            2: F.normalize(e[0] + 0.3 * e[2], dim=0)[None].repeat(3, 1),
            4: F.normalize(e[3] + 0.2 * e[0], dim=0)[None].repeat(3, 1),
            6: F.normalize(e[4] + 0.1 * e[3], dim=0)[None].repeat(3, 1)}
    assert nearest_other(bank, aus) == {1: 2, 2: 1, 4: 1, 6: 4}
    texts = {a: [f"about AU{a}"] * 3 for a in aus}
    got, txt, source = neighbour_bank(bank, texts, aus)
    assert all(source[a] != a for a in aus)  # no fixed point
    assert all(got[a] is bank[source[a]] and txt[a] == texts[source[a]] for a in aus)
    # on a random bank too: never itself, always the highest-cosine other AU
    rb = _structured_bank(tuple(range(1, 13)), 5, seed=3)
    nb = nearest_other(rb, tuple(rb))
    p = prototypes(rb, tuple(rb))
    for i, a in enumerate(rb):
        sims = {b: float(p[i] @ p[j]) for j, b in enumerate(rb) if b != a}
        assert nb[a] != a and nb[a] == max(sims, key=sims.get)


def test_random_cov_matches_the_corpus_covariance_within_sampling_error():
    aus = tuple(range(1, 25))
    corpus = _structured_bank(aus, 40, dim=12, seed=1)
    mu, between, within = pooled_moments(corpus, aus)
    draws = [random_cov_bank(corpus, aus, seed)[0] for seed in range(20)]
    assert all(len(d[a]) == 40 for d in draws for a in aus)  # corpus-sized
    got = [pooled_moments(d, aus) for d in draws]

    def rel(x, y):
        return float((x - y).norm() / y.norm())

    # one draw: 960 rows match the within-AU covariance closely; 24 centres the between one
    # loosely; over 20 draws both converge (the rows are unit-normalised, a small bias)
    assert max(rel(w, within) for _, _, w in got) < 0.2
    assert rel(torch.stack([w for _, _, w in got]).mean(0), within) < 0.08
    assert rel(torch.stack([b for _, b, _ in got]).mean(0), between) < 0.25
    for k, ref in ((1, between), (2, within)):
        ratio = float(torch.stack([torch.trace(g[k]) for g in got]).mean() / torch.trace(ref))
        assert 0.9 < ratio < 1.1  # the total variance, between and within AUs
    assert max(rel(m, mu) for m, _, _ in got) < 0.15
    iso, _ = random_cov_bank(corpus, aus, 0)
    again, fp = random_cov_bank(corpus, aus, 0)
    assert all(torch.equal(iso[a], again[a]) for a in aus)
    assert fp != random_cov_bank(corpus, aus, 1)[1]
    assert not any(torch.allclose(iso[a], corpus[a]) for a in aus)


@pytest.mark.parametrize("mode", ["corpus", "shuffled", "neighbour", "random", "random_cov"])
def test_every_bank_mode_loads_whitened_or_not(mode, tmp_path):
    aus = (1, 2, 4)
    bank_dir = write_text_bank(tmp_path / "bank", aus=aus, per_au=10, dim=16)
    plain = load_text(ModelConfig(aus=aus, text_mode=mode, text_dim=16), aus, str(bank_dir))
    white = load_text(ModelConfig(aus=aus, text_mode=mode, text_dim=16, text_whiten=True), aus,
                      str(bank_dir))
    assert [len(plain.bank[a]) for a in aus] == [10, 10, 10]
    assert plain.fingerprint != white.fingerprint
    assert not torch.allclose(plain.bank[1], white.bank[1])
    if mode == "neighbour":
        corpus = load_text(ModelConfig(aus=aus, text_dim=16), aus, str(bank_dir))
        near = nearest_other(corpus.bank, aus)
        assert all(plain.texts[a] == corpus.texts[near[a]] for a in aus)


def test_whitening_a_free_vector_mode_is_refused():
    with pytest.raises(HivaError, match="text_whiten applies to a bank"):
        ModelConfig(text_mode="learned", text_whiten=True)
