"""hiva's ME-GraphAU / OpenGraphAU: the batched parts equal the original's per-AU and repeated
forms, the loss follows their formula, and their checkpoints (built here in their key layout)
import strictly and give the same outputs through an export folder and ``hiva.Detector``.
Parity with their own code is checked outside the project (docs/megraphau.md)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model
from tests.model.graphau_layout import randomise_norms, save_their_checkpoint

OPEN_SIDE = (1, 2, 4, 6, 10, 11, 14)


def graph_cfg(**kw) -> ModelConfig:
    base = dict(aus="bp4d", arch="megraphau", backbone="resnet18", pretrained=None,
                input_size=64)
    base.update(kw)
    return ModelConfig(**base)


def test_au_blocks_equal_separate_linear_blocks():
    from hiva.model.megraphau import AUBlocks, LinearBlock

    torch.manual_seed(0)
    n, c = 3, 8
    blocks = AUBlocks(n, c)
    randomise_norms(blocks)
    sep = [LinearBlock(c, c) for _ in range(n)]
    for i, lb in enumerate(sep):
        lb.fc.weight.data.copy_(blocks.weight[i])
        lb.fc.bias.data.copy_(blocks.bias[i])
        for part in ("weight", "bias", "running_mean", "running_var"):
            getattr(lb.bn, part).data.copy_(getattr(blocks.bn, part)[i * c:(i + 1) * c])
    x = torch.randn(4, 5, c)
    for train in (False, True):  # running statistics, then batch statistics per AU
        blocks.train(train)
        got = blocks(x)
        for i, lb in enumerate(sep):
            lb.train(train)
            torch.testing.assert_close(got[:, i], lb(x), atol=1e-6, rtol=1e-5)


def test_edge_extractor_equals_the_repeated_pairs():
    """GEM as the paper's code writes it: every edge e = i·N + j built from copies of node i's
    (keys, values) and node j's (queries) features."""
    from hiva.model.megraphau import EdgeExtractor

    torch.manual_seed(0)
    b, n, length, c = 2, 3, 4, 8
    gem = EdgeExtractor(c, n).eval()
    randomise_norms(gem)
    fu, x = torch.randn(b, n, length, c), torch.randn(b, length, c)
    feat = gem.FAM(fu, x.unsqueeze(1).expand(b, n, length, c))
    end = feat.repeat(1, 1, n, 1).view(b, n * n, length, c)
    start = feat.repeat(1, n, 1, 1).view(b, n * n, length, c)
    want = gem.bn(gem.edge_proj(gem.ARM(start, end)))
    torch.testing.assert_close(gem(fu, x), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stage", [1, 2])
def test_outputs(stage):
    torch.manual_seed(0)
    m = build_model(graph_cfg(graph_stage=stage), "cpu", False).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, 64, 64))
    assert out.probs.shape == (2, 12) and ((out.probs >= 0) & (out.probs <= 1)).all()
    torch.testing.assert_close(torch.sigmoid(out.logits), out.probs.clamp(1e-6, 1 - 1e-6))
    torch.testing.assert_close(out.activation_maps.sum(-1), torch.ones(2, 12))
    assert out.map_size == (2, 2)
    assert (out.edge_logits is None) == (stage == 1)
    if stage == 2:
        assert out.edge_logits.shape == (2, 144, 4)


def test_loss_is_their_weighted_asymmetric_loss_plus_edges():
    from hiva.model.hiva import HiVAOutput
    from hiva.model.losses import GraphAULoss, build_loss

    cfg = graph_cfg(aus="1,2", graph_stage=2, edge_weight=0.5)
    loss = build_loss(cfg, torch.tensor([0.5, 1.5]))
    assert isinstance(loss, GraphAULoss)
    p = torch.tensor([[0.9, 0.2], [0.3, 0.6]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])
    edges = torch.randn(2, 4, 4)
    out = HiVAOutput(logits=p, probs=p, activation_maps=None, pooling_maps=None, map_size=(1, 1),
                     visual=None, text_proto=None, prototypes=None, text_attention=None,
                     edge_logits=edges)
    total, parts = loss(out, y, mask)
    w = [0.5, 1.5]
    terms = [-w[0] * math.log(0.9), -w[1] * 0.2 * math.log(0.8), -w[0] * 0.3 * math.log(0.7)]
    assert parts["cls"].item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    # frame 1 knows both labels (y = 1, 0): edges (0,0) → 3, (0,1) → 2, (1,0) → 1, (1,1) → 0;
    # frame 2 knows only AU1 (y = 0): edge (0,0) → 0
    want = torch.cat([F.cross_entropy(edges[0], torch.tensor([3, 2, 1, 0]), reduction="none"),
                      F.cross_entropy(edges[1, :1], torch.tensor([0]), reduction="none")]).mean()
    assert parts["edge"].item() == pytest.approx(want.item(), rel=1e-6)
    assert total.item() == pytest.approx(parts["cls"].item() + 0.5 * want.item(), rel=1e-6)
    total.backward()
    assert p.grad is not None


@pytest.mark.parametrize("source,stage", [("megraphau", 1), ("megraphau", 2),
                                          ("opengraphau", 2)])
def test_their_checkpoint_imports_strictly_and_predicts_the_same(tmp_path, source, stage):
    import hiva
    from hiva.predict.import_graphau import import_checkpoint

    side = OPEN_SIDE if source == "opengraphau" else ()
    cfg = graph_cfg(aus="opengraphau" if side else "bp4d", input_size=224, graph_stage=stage,
                    graph_k=4, side_aus=side,
                    graph_variant="opengraphau" if side else "me-graphau")
    torch.manual_seed(0)
    model = build_model(cfg, "cpu", False)
    randomise_norms(model)
    model.eval()
    save_their_checkpoint(model, source, tmp_path / "theirs.pth")
    info = import_checkpoint(source, tmp_path / "theirs.pth", "resnet18", tmp_path / "exp")
    assert info["model_config"]["graph_stage"] == stage
    det = hiva.Detector(tmp_path / "exp", device="cpu")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want, got = model(x), det.forward(x)
    # The Detector folds BatchNorm into the convolutions and runs channels_last
    # (hiva.predict.inference.prepare): float rounding, not a weight out of place.
    torch.testing.assert_close(got.probs, want.probs, atol=1e-5, rtol=0)
    if side:
        torch.testing.assert_close(got.side_probs, want.side_probs, atol=1e-5, rtol=0)
        from hiva.predict.table import META_COLUMNS

        m = len(META_COLUMNS)
        assert det.columns[m + 27:m + 29] == ["AU01L_p", "AU01R_p"]
        assert "AU11R_c" in det.columns and len(det.thresholds) == 41
    assert (tmp_path / "exp" / "aus.txt").read_text().startswith("AU01\t")


def test_import_refuses_keys_that_do_not_fit(tmp_path):
    from hiva.predict.import_graphau import import_checkpoint

    torch.manual_seed(0)
    model = build_model(graph_cfg(input_size=224, graph_k=4), "cpu", False)
    good = tmp_path / "good.pth"
    save_their_checkpoint(model, "megraphau", good)
    sd = torch.load(good, weights_only=True)["state_dict"]

    def write(d, name):
        torch.save({"state_dict": d}, tmp_path / name)
        return tmp_path / name

    extra = write(dict(sd, **{"module.head.mystery.weight": torch.zeros(3)}), "extra.pth")
    with pytest.raises(HivaError, match=r"map nowhere: head\.mystery\.weight"):
        import_checkpoint("megraphau", extra, "resnet18", tmp_path / "a")
    lacking = write({k: v for k, v in sd.items() if "gnn.U.bias" not in k}, "lacking.pth")
    with pytest.raises(HivaError, match=r"nothing fills: gnn\.U\.bias"):
        import_checkpoint("megraphau", lacking, "resnet18", tmp_path / "b")
    with pytest.raises(HivaError, match="does not fit megraphau resnet50 stage 1: model tensors "
                                        "nothing fills: backbone"):
        import_checkpoint("megraphau", good, "resnet50", tmp_path / "c")
    with pytest.raises(HivaError, match="not a opengraphau checkpoint"):
        import_checkpoint("opengraphau", good, "resnet18", tmp_path / "d")
    with pytest.raises(HivaError, match="--aus lists 8 AUs, the checkpoint has 12"):
        import_checkpoint("megraphau", good, "resnet18", tmp_path / "e", aus="disfa")
    with pytest.raises(HivaError, match="is not one of theirs"):
        import_checkpoint("megraphau", good, "vgg16", tmp_path / "f")
    assert not any((tmp_path / x).exists() for x in "abcdef")


def test_import_never_unpickles_objects(tmp_path):
    import fractions

    from hiva.predict.import_graphau import import_checkpoint

    torch.save({"state_dict": {"x": fractions.Fraction(1, 3)}}, tmp_path / "odd.pth")
    with pytest.raises(HivaError, match="tensor-only checkpoint"):
        import_checkpoint("megraphau", tmp_path / "odd.pth", "resnet18", tmp_path / "x")


def test_summary_counts_its_parts():
    from hiva.model.cli import summarise

    s = summarise(graph_cfg(graph_stage=2))
    assert s["params"]["total"] == sum(v for k, v in s["params"].items() if k != "total")
    assert s["flops_by_part"]["edge_extractor"] > 0 and s["flops_by_part"]["au_blocks"] > 0
