"""CLIP-family backbones (``--backbone clip:DIR``) and ``hiva evaluate --zero-shot``, on a tiny
randomly initialised CLIPModel built offline (no real CLIP weights are used in any test)."""

from __future__ import annotations

import json

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.config import ModelConfig
from hiva.model.hiva import HiVA
from tests.embed.helpers import make_rows, write_corpus
from tests.predict.helpers import write_text_bank
from tests.train.conftest import TINY_AUS

AUS = tuple(int(a) for a in TINY_AUS.split(","))


def test_clip_backbone_is_clips_own_tower(tiny_clip_model):
    from transformers import CLIPModel

    from hiva.model.clip import OPENAI_MEAN, ClipBackbone

    bb = ClipBackbone("clip:" + tiny_clip_model, True, 48).eval()  # 48 px: interpolated pos.
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert bb(x).shape == (2, 32, 6, 6)  # width 32, 48 / patch 8
        ref = CLIPModel.from_pretrained(tiny_clip_model).eval().get_image_features(
            pixel_values=x, interpolate_pos_encoding=True)
        ref = ref if torch.is_tensor(ref) else ref.pooler_output
        torch.testing.assert_close(bb.image_embeds(x), ref)
    assert bb.mean == OPENAI_MEAN and bb.embed_dim == 16
    with pytest.raises(HivaError, match="not a multiple of the CLIP patch size 8"):
        ClipBackbone("clip:" + tiny_clip_model, False, 36)


def test_an_unreachable_clip_is_one_line(monkeypatch, tmp_path):
    from hiva.model.clip import ClipBackbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(HivaError, match=r"CLIP model owner/no-such-clip is not available here "
                                        r".*--backbone clip:DIR"):
        ClipBackbone("clip:owner/no-such-clip", True, 224)


def test_hiva_on_a_clip_backbone_restores_without_the_weights_file(tiny_clip_model):
    cfg = ModelConfig(aus=AUS, backbone="clip:" + tiny_clip_model, input_size=32, d_model=32,
                      num_heads=2, text_mode="learned")
    assert cfg.pretrained == "clip"  # the default "shipped" means "CLIP's own weights" here
    model = HiVA(cfg).eval()
    rebuilt = HiVA(ModelConfig(**{**cfg.__dict__, "pretrained": None})).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(rebuilt(x).logits, out.logits)
    assert out.map_size == (4, 4) and out.activation_maps.shape == (1, len(AUS), 16)
    with pytest.raises(HivaError, match="loads its own weights"):
        ModelConfig(backbone="clip:" + tiny_clip_model, pretrained="w.pth")
    with pytest.raises(HivaError, match="clip: needs a model"):
        HiVA(ModelConfig(backbone="clip:", pretrained=None))


def test_train_on_a_clip_backbone(tiny_manifest, tiny_cfg, tiny_clip_model, tmp_path, cli):
    path = tiny_cfg(tmp_path / "c.yaml", model=dict(
        backbone="clip:" + tiny_clip_model, input_size=32, d_model=32, num_heads=2,
        text_mode="learned"), resize=32)
    cli("train", "--config", path, "--data", tiny_manifest, "--out", tmp_path / "run")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(m["mean"]["f1"]) == len(AUS)


@pytest.fixture(scope="module")
def clip_bank(tiny_clip_model, tmp_path_factory, cli_module):
    root = tmp_path_factory.mktemp("clip_bank")
    corpus = write_corpus(root / "corpus", make_rows(6, AUS))
    cli_module("embed", "--corpus", corpus, "--out", root / "bank", "--encoder",
               "clip:" + tiny_clip_model, "--device", "cpu", "--cache-dir", root / "cache")
    return root / "bank"


@pytest.fixture(scope="module")
def cli_module():
    from tests.helpers import run_cli

    return run_cli


def test_zero_shot_scores_aus_from_descriptions_alone(tiny_manifest, tiny_clip_model, clip_bank,
                                                      tiny_cfg, tmp_path, cli):
    path = tiny_cfg(tmp_path / "z.yaml")  # the protocol: 3 folds, fold 1, val 25%
    out = tmp_path / "zs"
    r = cli("evaluate", "--zero-shot", "--config", path, "--data", tiny_manifest,
            "--backbone", "clip:" + tiny_clip_model, "--text-bank", clip_bank,
            "--set", "model.input_size=32", "--set", "resize=32", "--out", out)
    assert "Test F1" in r.stdout
    s = json.loads((out / "zero_shot.json").read_text())
    assert s["aus"] == list(AUS) and s["zero_shot"]["encoder"].startswith("clip:")
    fold = json.loads((out / "fold1" / "metrics.json").read_text())
    assert len(fold["cos_thresholds"]) == len(AUS)
    assert fold["frames"]["test"] > 0 and fold["frames"]["val"] > 0
    import pandas as pd

    pred = pd.read_parquet(out / "fold1" / "test_predictions.parquet")
    assert len(pred) == fold["frames"]["test"] and "p_AU01" in pred and "y_AU01" in pred
    assert all(0.0 <= v <= 1.0 for v in fold["test"]["f1"] if v is not None)


def test_calibration_picks_the_validation_f1_threshold():
    import numpy as np

    from hiva.train.zero_shot import calibrate

    cos = np.array([[0.1], [0.2], [0.3], [0.4], [0.5], [0.6]])
    y = np.array([[0], [0], [1], [0], [1], [1]])
    th, sd = calibrate(cos, y, np.ones_like(y, dtype=bool))
    assert th[0] == pytest.approx(0.3)  # F1 0.857 (TP 3, FP 1); 0.5 gives 0.8, 0.1 gives 0.667
    assert sd[0] == pytest.approx(cos.std())
    none = calibrate(cos, np.zeros_like(y), np.ones_like(y, dtype=bool))[0]
    assert none[0] == pytest.approx(0.35)  # no positive: the median


def test_zero_shot_refuses_what_cannot_work(tiny_manifest, tiny_clip_model, tiny_cfg, tmp_path,
                                            cli):
    fake = write_text_bank(tmp_path / "fake", aus=AUS, dim=16)  # not a CLIP text bank
    base = ["evaluate", "--zero-shot", "--data", tiny_manifest, "--out", tmp_path / "o",
            "--config", tiny_cfg(tmp_path / "z.yaml"), "--set", "model.input_size=32"]
    cases = [
        (["--backbone", "clip:" + tiny_clip_model, "--text-bank", fake],
         "was embedded with random-test-vectors, not a CLIP text tower"),
        (["--backbone", "resnet18", "--text-bank", fake], "needs a CLIP backbone"),
        (["--backbone", "clip:" + tiny_clip_model], "needs --text-bank DIR"),
    ]
    for extra, msg in cases:
        r = cli(*base, *extra, check=False)
        assert r.returncode != 0 and "Traceback" not in r.stderr and msg in r.stderr, r.stderr
    r = cli("evaluate", "--zero-shot", "--checkpoint", tmp_path, check=False)
    assert r.returncode != 0 and "drop --checkpoint" in r.stderr


def test_zero_shot_thresholds_are_calibrated_on_validation_subjects_only(
        tiny_manifest, tiny_clip_model, clip_bank, tiny_cfg, tmp_path):
    """Flipping every label of the training and test subjects leaves each fold's cosine
    thresholds as they were; flipping those of the validation subjects moves them: the
    calibration sees the validation rows and no others."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiva.config import load_config
    from hiva.train import protocol
    from hiva.train.config import TrainConfig
    from hiva.train.zero_shot import zero_shot

    path = tiny_cfg(tmp_path / "z.yaml", resize=32)  # 3 folds, fold 1, val 25%

    def config(data):
        return load_config(TrainConfig, path, None, data=str(data), text_bank=str(clip_bank),
                           device="cpu",
                           model={"backbone": "clip:" + tiny_clip_model, "input_size": 32})

    cfg = config(tiny_manifest)
    df, scheme = protocol.load_data(cfg.data)
    (_, pool, test), = protocol.make_folds(cfg, df, scheme)[1]
    train, val, _ = protocol.split_pool(cfg, pool)
    val, others = set(val["subject"]), set(train["subject"]) | set(test["subject"])
    assert val and set(train["subject"]) and set(test["subject"]) and not val & others
    table = pq.read_table(tiny_manifest)
    cols = [f"AU{a:02d}" for a in AUS]
    (tmp_path / "images").symlink_to(tiny_manifest.parent / "images")  # same relative paths

    def thresholds(name, flip):
        df = table.to_pandas()
        rows = df["subject"].isin(flip)
        df.loc[rows, cols] = 1 - df.loc[rows, cols]
        data = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False)
                       .replace_schema_metadata(table.schema.metadata), data)
        zero_shot(config(data), tmp_path / name)
        return json.loads((tmp_path / name / "fold1" / "metrics.json").read_text())[
            "cos_thresholds"]

    base = thresholds("base", set())
    assert thresholds("others", others) == base
    assert thresholds("val", val) != base
