"""HiVA forward: shapes, gradients, disentanglement, maps, switches, autocast."""

from __future__ import annotations

import types

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.attention import CDCA, DDCA
from hiva.model.graph import DynamicGraph, sym_normalise, topk_adjacency
from hiva.model.hiva import HiVA
from hiva.model.losses import HiVALoss


@pytest.mark.parametrize("aus,n", [("bp4d", 12), ("disfa", 8)])
def test_output_shapes(aus, n, toy_cfg, toy_batch):
    cfg = toy_cfg(aus=aus)
    model = HiVA(cfg)
    images, text, _ = toy_batch(cfg, b=3)
    out = model(images, text)
    h, w = out.map_size
    assert (h, w) == (2, 2)  # resnet18 stride 32 at 64×64
    assert out.logits.shape == (3, n) and out.probs.shape == (3, n)
    assert out.activation_maps.shape == (3, n, h * w) == out.pooling_maps.shape
    assert out.visual.shape == (3, n, 32) and out.text_proto.shape == (3, n, 32)
    assert torch.all((out.probs > 0) & (out.probs < 1))


@pytest.mark.parametrize("train", [True, False])
def test_maps_are_distributions_over_patches(train, toy_cfg, toy_batch):
    cfg = toy_cfg(dropout=0.3)  # attention dropout must not leak into the maps
    model = HiVA(cfg).train(train)
    images, text, _ = toy_batch(cfg)
    out = model(images, text)
    for maps in (out.activation_maps, out.pooling_maps):
        assert torch.all(maps >= 0)
        torch.testing.assert_close(maps.sum(-1), torch.ones(2, 12))
    # Different AUs look at different places: the maps are not all identical.
    assert not torch.allclose(out.activation_maps[:, 0], out.activation_maps[:, 1])


def test_every_trainable_part_gets_gradient(toy_cfg, toy_batch):
    cfg = toy_cfg(depth=2, graph_layers=2, language_edges=True, head="both")
    model = HiVA(cfg).train()
    # timm zero-initialises each ResNet block's last BN gain, which blocks gradient to the
    # block's convs at step 0 by design; give them a gain so every tensor is checked.
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    images, text, targets = toy_batch(cfg)
    out = model(images, text)
    loss, parts = HiVALoss(cfg)(out, targets, torch.ones_like(targets, dtype=torch.bool))
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
    assert set(parts) == {"cls", "align", "total"}


def _perturb(text, j):
    t = text.clone()
    t[j] += 5.0 * torch.randn_like(t[j])
    return t


def test_ddca_is_disentangled_and_cdca_mixes():
    torch.manual_seed(1)
    b, n, m, p, d = 2, 5, 4, 6, 16
    u, x = torch.randn(b, n, d), torch.randn(b, p, d)
    tokens, proto = torch.randn(n, m, d), torch.randn(b, n, d)
    ddca = DDCA(d, 2, 0.0).eval()
    u1, t1, maps, text_w = ddca(u, tokens, None, proto, x)
    u2, t2, _, _ = ddca(u, _perturb(tokens, 3), None, proto, x)
    assert maps.shape == (b, n, p) and text_w.shape == (b, n, m)  # over patches / descriptions
    torch.testing.assert_close(text_w.sum(-1), torch.ones(b, n))
    others = [i for i in range(n) if i != 3]
    torch.testing.assert_close(u1[:, others], u2[:, others])  # AU i never reads AU 3's text
    assert not torch.allclose(u1[:, 3], u2[:, 3])  # but AU 3 does
    torch.testing.assert_close(t1, t2)

    cdca = CDCA(d, 2, 0.0).eval()
    z1, _ = cdca(u1, t1)
    t_pert = t1.clone()
    t_pert[:, 3] += 5.0 * torch.randn(b, d)  # not a constant: LayerNorm would remove it
    z2, _ = cdca(u1, t_pert)
    assert all(not torch.allclose(z1[:, i], z2[:, i]) for i in others)  # CDCA mixes AUs


def test_cdca_streams_read_the_inputs_not_each_other():
    # Z_v = U + MHA(U, T) and Z_t = T + MHA(T, U): both directions read the block's INPUTS; the
    # text stream must not read the visual stream already updated from the text.
    torch.manual_seed(2)
    b, n, d = 2, 5, 16
    u, t = torch.randn(b, n, d), torch.randn(b, n, d)
    cdca = CDCA(d, 2, 0.0).eval()
    with torch.no_grad():
        zv, zt = cdca(u, t)
        torch.testing.assert_close(zv, cdca.v_self(cdca.v_from_t(u, t)[0]))
        torch.testing.assert_close(zt, cdca.t_self(cdca.t_from_v(t, u)[0]))


@pytest.mark.parametrize("cdca", [False, True])
def test_model_level_text_isolation(cdca, toy_cfg, toy_batch):
    # The graph mixes AU nodes, which now come from the text-derived queries: leave it out here.
    cfg = toy_cfg(cdca=cdca, graph=False)
    model = HiVA(cfg).eval()
    images, text, _ = toy_batch(cfg)
    with torch.no_grad():
        a = model(images, text).logits
        b = model(images, _perturb(text, 4)).logits
    others = [i for i in range(12) if i != 4]
    assert not torch.allclose(a[:, 4], b[:, 4])
    # Without CDCA each AU's logit depends only on its own descriptions.
    assert torch.allclose(a[:, others], b[:, others]) is (not cdca)


def test_text_mask_hides_padding(toy_cfg, toy_batch):
    cfg = toy_cfg(cdca=False)
    model = HiVA(cfg).eval()
    images, text, _ = toy_batch(cfg, m=4)
    mask = torch.ones(12, 4, dtype=torch.bool)
    mask[:, 3] = False
    garbage = text.clone()
    garbage[:, 3] = 100.0
    with torch.no_grad():
        a = model(images, text, mask).logits
        b = model(images, garbage, mask).logits
    torch.testing.assert_close(a, b)


def _loss_is_bce(cfg) -> bool:
    """The configured loss is plain BCE (ASL would weight the negatives by p) and has no
    alignment term."""
    logits = torch.tensor([[2.0, -1.0, 0.5] * (cfg.num_aus // 3)])
    y = torch.tensor([[0.0, 1.0, 0.0] * (cfg.num_aus // 3)])
    out = types.SimpleNamespace(logits=logits, visual=None, text_proto=None)
    total, parts = HiVALoss(cfg)(out, y)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    return set(parts) == {"cls", "total"} and torch.allclose(total, ref)


SWITCHES = [
    ({"graph": False}, lambda m: m.graph is None),
    ({"ddca": False}, lambda m: m.ddca is None),
    ({"cdca": False}, lambda m: m.cdca is None),
    ({"ddca": False, "cdca": False, "graph": False}, lambda m: m.ddca is None and m.cdca is None),
    ({"text_mode": "learned"}, lambda m: m.learned_text.shape == (12, 8, 16)),
    ({"text_mode": "random"}, lambda m: not hasattr(m, "learned_text")),
    ({"head": "match"}, lambda m: not hasattr(m.heads, "weight")),
    ({"head": "both"}, lambda m: hasattr(m.heads, "weight") and hasattr(m.heads, "logit_scale")),
    ({"head": "linear"}, lambda m: not hasattr(m.heads, "logit_scale")),
    ({"loss": "bce", "align_weight": 0.0}, lambda m: _loss_is_bce(m.cfg)),
    ({"language_edges": True, "graph_k": 2}, lambda m: m.graph.k == 2),
]


@pytest.mark.parametrize("kw,removed", SWITCHES, ids=[str(k) for k, _ in SWITCHES])
def test_each_switch_removes_its_module_and_trains(kw, removed, toy_cfg, toy_batch):
    cfg = toy_cfg(**kw)
    model = HiVA(cfg).train()
    assert removed(model)
    if kw.get("graph") is False or kw.get("ddca") is False or kw.get("cdca") is False:
        full = HiVA(toy_cfg()).param_counts()
        assert model.param_counts()["total"] < full["total"]
    images, text, targets = toy_batch(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # With the linear head the image-conditioned text stream z_t feeds nothing: dead by design.
    dead = ("t_from_v", "t_self") if cfg.head == "linear" else ()
    live = [(n, p) for n, p in model.named_parameters() if not any(k in n for k in dead)]
    before = [p.detach().clone() for _, p in live]
    loss_fn = HiVALoss(cfg)
    losses = []
    for _ in range(2):
        out = model(images, None if cfg.text_mode == "learned" else text)
        loss, _ = loss_fn(out, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = sum(not torch.equal(a, p) for a, (_, p) in zip(before, live))
    assert changed > 0.9 * len(before)


def test_bad_text_is_a_clear_error(cfg, toy_batch):
    model = HiVA(cfg)
    images, _, _ = toy_batch(cfg)
    with pytest.raises(HivaError, match="text has shape"):
        model(images, torch.randn(8, 3, 16))
    with pytest.raises(HivaError, match="needs description embeddings"):
        model(images, None)


def test_bf16_autocast_and_channels_last(cfg, toy_batch):
    model = HiVA(cfg).to(memory_format=torch.channels_last).train()
    images, text, targets = toy_batch(cfg)
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, text)
        loss, _ = HiVALoss(cfg)(out, targets)
    loss.backward()
    assert torch.isfinite(loss)
    torch.testing.assert_close(out.activation_maps.float().sum(-1), torch.ones(2, 12),
                               atol=2e-2, rtol=0)


def test_topk_graph_is_symmetric_and_normalised():
    feats = torch.randn(3, 6, 8)
    adj = topk_adjacency(feats, 2)
    assert torch.equal(adj, adj.transpose(-1, -2))
    assert torch.all(adj.diagonal(dim1=-2, dim2=-1) == 1)  # self is its own nearest
    assert torch.all(adj.sum(-1) >= 2)
    a = sym_normalise(adj)
    deg = adj.sum(-1)
    torch.testing.assert_close(a[0, 0, 0], 1 / deg[0, 0])
    g = DynamicGraph(8, 2, layers=2).eval()
    assert g(feats).shape == feats.shape
