"""ME-GraphAU as an arm of hiva's trainer: stage 1 trains through the same protocol, stage 2
starts from stage 1's weights of the same fold (``init_from``), a sweep resolves ``arm:NAME``."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.train.config import TrainConfig

GRAPH = dict(arch="megraphau", backbone="resnet18", pretrained="none", input_size=32)


def test_stage1_then_stage2_from_stage1(tiny_manifest, tmp_path, tiny_cfg, capsys):
    from hiva.train import trainer

    s1 = load_config(TrainConfig, tiny_cfg(tmp_path / "s1.yaml", model=dict(GRAPH)),
                     data=str(tiny_manifest), out=str(tmp_path / "s1"))
    summary = trainer.run(s1)
    fold = summary["folds"]["1"]
    assert fold["frames"]["test_scored"] == fold["frames"]["test"]
    assert (tmp_path / "s1" / "fold1" / "test_predictions.parquet").is_file()
    # the localisation scores read its per-AU feature-energy maps like HiVA's attention maps
    assert "localisation" in fold
    s2 = load_config(TrainConfig, tiny_cfg(tmp_path / "s2.yaml", model=dict(GRAPH, graph_stage=2),
                                           init_from=str(tmp_path / "s1")),
                     data=str(tiny_manifest), out=str(tmp_path / "s2"))
    capsys.readouterr()
    trainer.run(s2)
    said = capsys.readouterr().out
    assert "tensors from" in said and "s1/fold1/best.safetensors" in said
    hist = pd.read_csv(tmp_path / "s2" / "fold1" / "history.csv")
    assert "train_edge" in hist and (hist["train_edge"] > 0).all()
    assert json.loads((tmp_path / "s2" / "metrics.json").read_text())["folds"]["1"]["test"]
    # a trained ME-GraphAU exports and predicts like HiVA, reading no text
    import hiva
    from hiva.predict.export import export

    info = export(tmp_path / "s2", tmp_path / "exp")
    assert not (tmp_path / "exp" / "text_bank").exists()
    assert "ME-GraphAU facial Action Unit detector" in (tmp_path / "exp" / "README.md").read_text()
    det = hiva.Detector(tmp_path / "exp", device="cpu")
    df = det.detect(sorted(tiny_manifest.parent.rglob("*.jpg"))[:3])
    assert [c for c in df.columns if c.endswith("_p")][:2] == ["AU01_p", "AU02_p"]
    assert len(df) == 3 and df[["AU01_p", "AU02_p"]].notna().all().all()
    assert info["model_config"]["arch"] == "megraphau"


def test_init_from_copies_matching_tensors(tmp_path):
    import torch

    from hiva.model.config import ModelConfig
    from hiva.model.factory import build_model, save_weights
    from hiva.train.fold_setup import init_weights

    one = build_model(ModelConfig(**GRAPH), "cpu", False)
    two = build_model(ModelConfig(**dict(GRAPH, graph_stage=2)), "cpu", False)
    save_weights(one, tmp_path / "w.safetensors", {})
    n = init_weights(two, str(tmp_path / "w.safetensors"), 1, verbose=False)
    shared = [k for k in one.state_dict() if k in two.state_dict()
              and one.state_dict()[k].shape == two.state_dict()[k].shape]
    assert n == len(shared) and any(k.startswith("backbone.") for k in shared)
    assert torch.equal(two.state_dict()["sc"], one.state_dict()["sc"])
    hiva_model = build_model(ModelConfig(backbone="lite0", pretrained=None, input_size=32),
                             "cpu", False)
    with pytest.raises(HivaError, match="no tensor fits this model"):
        init_weights(hiva_model, str(tmp_path / "w.safetensors"), 1, verbose=False)
    with pytest.raises(HivaError, match="does not exist; train that run"):
        init_weights(two, str(tmp_path / "nowhere"), 1, verbose=False)


def test_sweep_init_from_arm(tmp_path):
    from hiva.train.sweep import load_sweep

    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "set: {data: m.parquet}\n"
        "arms:\n"
        "  s1: {model: {arch: megraphau, backbone: resnet18, pretrained: none}}\n"
        "  s2: {model: {arch: megraphau, backbone: resnet18, pretrained: none, graph_stage: 2},"
        " init_from: 'arm:s1'}\n"
        "seeds: [0, 3]\n")
    runs = {r.id: r for r in load_sweep(sweep, tmp_path / "root").runs}
    assert runs["s2/seed3"].config.init_from == str(tmp_path / "root" / "s1" / "seed3")
    sweep.write_text(sweep.read_text().replace("arm:s1", "arm:s2"))
    with pytest.raises(HivaError, match="must name an arm listed before it"):
        load_sweep(sweep, tmp_path / "root")


def test_side_outputs_are_not_trained(tiny_manifest, tmp_path, tiny_cfg):
    from hiva.train import trainer

    cfg = load_config(TrainConfig, tiny_cfg(tmp_path / "c.yaml", model=dict(GRAPH, side_aus=[1])),
                      data=str(tiny_manifest), out=str(tmp_path / "run"))
    with pytest.raises(HivaError, match="side_aus"):
        trainer.run(cfg)


def test_evaluate_an_imported_checkpoint(tiny_manifest, tmp_path):
    import torch

    from hiva.model.config import ModelConfig
    from hiva.model.factory import build_model
    from hiva.predict.import_graphau import import_checkpoint
    from hiva.train.evaluate import evaluate
    from tests.model.graphau_layout import save_their_checkpoint
    from tests.train.conftest import TINY_AUS

    torch.manual_seed(0)
    model = build_model(ModelConfig(aus=TINY_AUS, arch="megraphau", backbone="resnet18",
                                    pretrained=None, input_size=224, graph_k=2), "cpu", False)
    save_their_checkpoint(model, "megraphau", tmp_path / "ck.pth")
    import_checkpoint("megraphau", tmp_path / "ck.pth", "resnet18", tmp_path / "exp",
                      aus=TINY_AUS, graph_k=2)
    with pytest.raises(HivaError, match="is an export folder: pass --data"):
        evaluate(tmp_path / "exp", 1, device="cpu")
    res = evaluate(tmp_path / "exp", 1, data=str(tiny_manifest), device="cpu", num_workers=0)
    assert len(res["test"]["f1"]) == 6 and res["epoch"] is None
    saved = json.loads((tmp_path / "exp" / "evaluate_fold1.json").read_text())
    assert saved["test"]["n"] == res["test"]["n"] > 0
