"""The faithfulness checks of activation maps: rank correlation and cell deletion by hand, and
both checks end to end on a tiny trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hiva.train.faithfulness import delete_cells, faithfulness, rank_correlation


def test_rank_correlation_by_hand():
    a = np.array([[0.1, 0.5, 0.2, 0.9], [1.0, 1.0, 1.0, 1.0]])
    assert rank_correlation(a, a)[0] == pytest.approx(1.0)
    assert rank_correlation(a[:1], -a[:1])[0] == pytest.approx(-1.0)
    # ranks (1,3,2,4) vs (1,2,3,4): 1 - 6·Σd²/(n(n²-1)) = 1 - 6·2/60
    assert rank_correlation(a[:1], np.array([[1, 2, 3, 4.0]]))[0] == pytest.approx(0.8)
    assert np.isnan(rank_correlation(a, a)[1])  # a constant map has no ranking


def test_delete_cells_greys_the_patches_under_the_cells():
    x = torch.ones(2, 3, 8, 8)
    out = delete_cells(x, torch.tensor([[0], [3]]), (2, 2))
    assert out[0, :, :4, :4].abs().sum() == 0 and out[0, :, 4:, :].min() == 1
    assert out[1, :, 4:, 4:].abs().sum() == 0 and out[1, :, :4, :].min() == 1


def test_faithfulness_of_a_tiny_run(tiny_manifest, tiny_cfg, cli, tmp_path):
    cfg = tiny_cfg(tmp_path / "tiny.yaml", model=dict(
        backbone="resnet18", pretrained="none", input_size=64, d_model=32, num_heads=2,
        text_mode="random", random_text_tokens=2, dropout=0.1, feature_stride=16,
        map_prior="bias"), resize=72)
    run = tmp_path / "run"
    cli("train", "--config", cfg, "--data", tiny_manifest, "--out", run)
    res = faithfulness(run, fold=1, frames=8, ks=(1, 2))
    assert res["frames"] == 8 and res["map_prior"] == "bias"
    c = res["randomised_rank_correlation"]
    assert -1 <= c["mean"] <= 1 and len(c["per_au"]) == len(res["aus"])
    d = res["deletion"]
    assert d["k"] == [1, 2] and d["pairs"] > 0
    assert all(abs(v) <= 1 for v in d["top_drop"] + d["random_drop"])
    assert json.loads((run / "fold1" / "faithfulness.json").read_text())["fold"] == 1
