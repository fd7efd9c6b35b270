"""The text path carries the information: AU identity comes from the descriptions alone, nothing
per-AU is free in the language modes, the alignment loss needs labels, and each text mode draws
its text as specified."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hiva.model.config import ModelConfig
from hiva.model.hiva import HiVA
from hiva.model.losses import HiVALoss
from hiva.model.text import sample_text
from hiva.textbank import load_text
from hiva.textbank.controls import derangement, random_bank, shuffled_bank
from tests.predict.helpers import write_text_bank

LANGUAGE_MODES = ("corpus", "names", "shuffled", "random")


def _swap(t: torch.Tensor, a: int, b: int, dim: int = 0) -> torch.Tensor:
    idx = torch.arange(t.shape[dim])
    idx[a], idx[b] = b, a
    return t.index_select(dim, idx)


def _model(toy_cfg, **kw) -> HiVA:
    model = HiVA(toy_cfg(**kw)).eval()
    with torch.no_grad():  # distinct per-AU biases, so swapping them is visible
        model.heads.match_bias.copy_(torch.linspace(-1.0, 1.0, model.cfg.num_aus))
    return model


@pytest.mark.parametrize("kw", [{}, {"language_edges": True, "depth": 2},
                                {"graph": False, "cdca": False}, {"text_center": True}],
                         ids=["default", "edges-depth2", "no-graph-no-cdca", "centred"])
def test_swapping_two_aus_descriptions_swaps_their_logits(kw, toy_cfg, toy_batch):
    model = _model(toy_cfg, head="match", **kw)
    images, text, _ = toy_batch(model.cfg, b=3, m=4)
    mask = torch.ones(text.shape[:2], dtype=torch.bool)
    mask[5, 3] = False  # padding moves with its AU too
    a, b = 1, 7
    with torch.no_grad():
        before = model(images, text, mask).logits
        model.heads.match_bias.copy_(_swap(model.heads.match_bias, a, b))
        after = model(images, _swap(text, a, b), _swap(mask, a, b)).logits
    torch.testing.assert_close(after, _swap(before, a, b, dim=1), rtol=1e-5, atol=1e-5)


def test_a_free_linear_head_breaks_that_swap(toy_cfg, toy_batch):
    """The test above can fail: with per-AU weights (head both) the AU is not its text."""
    model = _model(toy_cfg, head="both")
    images, text, _ = toy_batch(model.cfg, b=3, m=4)
    with torch.no_grad():
        before = model(images, text).logits
        model.heads.match_bias.copy_(_swap(model.heads.match_bias, 1, 7))
        after = model(images, _swap(text, 1, 7)).logits
    assert not torch.allclose(after, _swap(before, 1, 7, dim=1), atol=1e-3)


def test_centring_removes_the_common_direction():
    from hiva.model.language import TextProjector, centre, masked_mean

    g = torch.Generator().manual_seed(0)
    common = torch.randn(16, generator=g)
    text = F.normalize(common + 0.3 * torch.randn(12, 5, 16, generator=g), dim=-1)
    mask = torch.ones(12, 5, dtype=torch.bool)
    mask[3, 4] = False
    off = ~torch.eye(12, dtype=torch.bool)

    def spread(x):  # mean cosine between two AUs' mean rows
        p = F.normalize(masked_mean(x, mask), dim=-1)
        return (p @ p.T)[off].mean().item()

    c = centre(text, mask)
    assert spread(text) > 0.9 and abs(spread(c)) < 0.2
    torch.testing.assert_close(masked_mean(c.reshape(1, 60, 16), mask.reshape(1, 60)),
                               torch.zeros(1, 16), atol=1e-6, rtol=0)
    proj = TextProjector(16, 8, 4, 0.0, center=True)
    assert proj(text, mask)[1].shape == (12, 8)


@pytest.mark.parametrize("center", [False, True])
def test_one_projection_call_equals_one_per_part(center):
    """Tokens and prototypes go through the projection in one call: the same as projecting the
    descriptions, then their masked unit means, in two (float64, outputs and gradients)."""
    from hiva.model.language import TextProjector, centre, masked_mean

    torch.manual_seed(0)
    proj = TextProjector(16, 8, 4, 0.0, center=center).double()
    text = torch.randn(12, 5, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(12, 5, dtype=torch.bool)
    mask[3, 2:] = False
    mask[7, 4] = False

    def two_calls(text, mask):
        unit = F.normalize(text, dim=-1)
        if center:
            unit = centre(unit, mask)
        return proj.project(unit), proj.project(masked_mean(F.normalize(unit, dim=-1), mask))

    got = []
    for fn in (two_calls, proj):
        proj.zero_grad()
        text.grad = None
        tokens, protos = fn(text, mask)
        ((tokens * torch.linspace(-1, 1, 8, dtype=torch.float64)).sum()
         + (protos ** 2).sum()).backward()
        got.append((tokens.detach(), protos.detach(), text.grad.clone(),
                    *(p.grad.clone() for p in proj.parameters())))
    assert got[1][0].shape == (12, 5, 8) and got[1][1].shape == (12, 8)
    for a, b in zip(*got):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def _counts(cfg: ModelConfig) -> dict[str, int]:
    return HiVA(cfg).param_counts()


@pytest.mark.parametrize("mode", LANGUAGE_MODES)
def test_language_modes_have_no_per_au_parameters(mode, toy_cfg):
    """12 AUs vs 8 AUs: every part has the same parameters except the heads' per-AU bias."""
    big, small = _counts(toy_cfg(aus="bp4d", text_mode=mode)), _counts(
        toy_cfg(aus="disfa", text_mode=mode))
    diff = {k: big[k] - small[k] for k in big if big[k] != small[k]}
    assert diff == {"heads": 12 - 8, "total": 12 - 8}


def test_learned_and_linear_are_the_per_au_controls(toy_cfg):
    k, dt, d = 8, toy_cfg().text_width, toy_cfg().d_model
    big = _counts(toy_cfg(aus="bp4d", text_mode="learned", learned_tokens=k))
    small = _counts(toy_cfg(aus="disfa", text_mode="learned", learned_tokens=k))
    assert big["total"] - small["total"] == 4 + 4 * k * dt  # bias + free vectors
    lin = _counts(toy_cfg(aus="bp4d", head="linear"))["heads"]
    assert lin - _counts(toy_cfg(aus="disfa", head="linear"))["heads"] == 4 * (d + 1)


def test_learned_mode_reads_its_own_vectors(toy_cfg, toy_batch):
    model = HiVA(toy_cfg(text_mode="learned", learned_tokens=3)).eval()
    images, text, _ = toy_batch(model.cfg)
    with torch.no_grad():
        a = model(images).logits
        b = model(images, text).logits  # given text is ignored: there is no language
        model.learned_text.add_(torch.randn_like(model.learned_text))
        c = model(images).logits
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert model(images).text_attention.shape == (2, 12, 3)


# --- the alignment loss ---------------------------------------------------------------------

def _align(visual, protos, targets, mask=None) -> float:
    loss = HiVALoss(ModelConfig())  # 12 AUs, τ 0.07
    if mask is None:
        mask = torch.ones_like(targets, dtype=torch.bool)
    return float(loss.alignment(visual, protos, targets, mask))


def _label_features(protos, targets, noise=0.0, seed=0):
    """z_v,bi = +p_i when AU i is on in frame b, −p_i when off (+ noise): features that tell."""
    g = torch.Generator().manual_seed(seed)
    sign = targets * 2 - 1
    v = sign.unsqueeze(-1) * protos.unsqueeze(0)
    return v + noise * torch.randn(v.shape, generator=g)


def test_alignment_needs_labels_not_identities():
    g = torch.Generator().manual_seed(0)
    b, n, d = 64, 12, 32
    protos = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    y = (torch.rand(b, n, generator=g) > 0.6).float()
    identity = protos.unsqueeze(0).expand(b, -1, -1)  # "I am AU i", whatever the frame shows
    informative = _label_features(protos, y, noise=0.1)
    shuffled_y = y[torch.randperm(b, generator=g)]
    l_id, l_inf, l_shuf = (_align(identity, protos, y), _align(informative, protos, y),
                           _align(informative, protos, shuffled_y))
    n_off = float((1 - y).sum(0).mean())
    assert l_id > 0.9 * torch.log(torch.tensor(1 + n_off)).item()  # no identity shortcut
    assert l_inf < 0.05
    assert l_shuf > 10 * l_inf and l_shuf > 1.0  # labels shuffled across frames: stays high


def test_alignment_ignores_unknown_labels():
    g = torch.Generator().manual_seed(1)
    b, n, d = 16, 12, 32
    protos = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    y = (torch.rand(b, n, generator=g) > 0.5).float()
    v = _label_features(protos, y, noise=0.2)
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[:, 3] = False  # a zero-shot AU: neither positive nor negative
    base = _align(v, protos, y, mask)
    y2 = y.clone()
    y2[:, 3] = 1 - y2[:, 3]
    assert _align(v, protos, y2, mask) == pytest.approx(base, abs=1e-6)
    none = torch.zeros_like(mask)
    assert _align(v, protos, y, none) == 0.0


def test_alignment_gradient_is_finite_without_negatives(toy_cfg, toy_batch):
    cfg = toy_cfg()
    model = HiVA(cfg).train()
    images, text, _ = toy_batch(cfg)
    targets = torch.ones(2, cfg.num_aus)  # every AU on: no negative frame
    out = model(images, text)
    loss, parts = HiVALoss(cfg)(out, targets)
    loss.backward()
    assert torch.isfinite(parts["align"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# --- the text modes -------------------------------------------------------------------------

def test_shuffled_is_a_seeded_derangement():
    for n in (2, 3, 12):
        for seed in range(5):
            perm = derangement(n, seed)
            assert sorted(perm) == list(range(n)) and all(p != i for i, p in enumerate(perm))
    assert derangement(12, 0) == derangement(12, 0) != derangement(12, 1)
    emb = {a: torch.full((a, 2), float(a)) for a in (1, 2, 4)}
    texts = {a: [f"t{a}"] * a for a in (1, 2, 4)}
    got, txt, source = shuffled_bank(emb, texts, (1, 2, 4), 0)
    for a in (1, 2, 4):
        assert source[a] != a and got[a] is emb[source[a]] and txt[a] == texts[source[a]]


def test_random_bank_is_corpus_sized_unit_and_seeded():
    counts = {1: 5, 2: 9}
    a, fa = random_bank((1, 2), counts, 16, 0)
    b, fb = random_bank((1, 2), counts, 16, 0)
    c, fc = random_bank((1, 2), counts, 16, 1)
    assert [len(a[1]), len(a[2])] == [5, 9]
    torch.testing.assert_close(a[2].norm(dim=-1), torch.ones(9))
    assert torch.equal(a[1], b[1]) and fa == fb and fa != fc and not torch.equal(a[1], c[1])


@pytest.mark.parametrize("mode", ["corpus", "shuffled", "random"])
def test_bank_modes_resample_every_step_and_fix_evaluation(mode, tmp_path):
    aus = (1, 2, 4)
    bank_dir = write_text_bank(tmp_path / "bank", aus=aus, per_au=10, dim=16)
    mc = ModelConfig(aus=aus, text_mode=mode, text_dim=16)
    text = load_text(mc, aus, str(bank_dir))
    assert [len(text.bank[a]) for a in aus] == [10, 10, 10]  # corpus-sized in every mode
    g = torch.Generator().manual_seed(0)
    s1, _ = sample_text(text.bank, aus, 4, g, train=True)
    s2, _ = sample_text(text.bank, aus, 4, g, train=True)
    assert not torch.equal(s1, s2)  # a new draw every step
    e1, _ = sample_text(text.bank, aus, 4, torch.Generator().manual_seed(5), train=False)
    e2, _ = sample_text(text.bank, aus, 4, torch.Generator().manual_seed(9), train=False)
    assert torch.equal(e1, e2)  # evaluation sees one fixed subset
    corpus = load_text(ModelConfig(aus=aus, text_mode="corpus", text_dim=16), aus, str(bank_dir))
    if mode == "shuffled":
        assert text.fingerprint != corpus.fingerprint
        for a in aus:
            src = [b for b in aus if torch.equal(text.bank[a], corpus.bank[b])]
            assert len(src) == 1 and src[0] != a and text.texts[a] == corpus.texts[src[0]]
    if mode == "random":
        assert text.texts is None and text.encoder is None
        assert not any(torch.allclose(text.bank[a], corpus.bank[a]) for a in aus)


def test_random_without_a_corpus_and_learned_need_no_bank():
    mc = ModelConfig(aus=(1, 2), text_mode="random", text_dim=16, random_text_tokens=6)
    t = load_text(mc, (1, 2))
    assert [tuple(t.bank[a].shape) for a in (1, 2)] == [(6, 16), (6, 16)]
    learned = load_text(ModelConfig(aus=(1, 2), text_mode="learned"), (1, 2))
    assert learned.bank is None and learned.fingerprint == "learned"


def test_a_config_from_the_old_text_path_is_explained(tmp_path):
    from safetensors.torch import save_file

    from hiva.config import coerce_fields
    from hiva.errors import HivaError
    from hiva.model.factory import read_checkpoint

    with pytest.raises(HivaError, match="before the text path was rebuilt.*retrain"):
        coerce_fields(ModelConfig, {"text_mode": "random", "random_text_seed": 0}, "model config")
    f = tmp_path / "old.safetensors"
    save_file({"x": torch.zeros(1)}, str(f), metadata={
        "model_config": '{"text_mode": "random", "random_text_seed": 0}'})
    with pytest.raises(HivaError, match=r"model config of .*old.safetensors has random_text_seed"):
        read_checkpoint(f)

