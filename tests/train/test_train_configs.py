"""Every shipped training config validates (keys, values, the model it builds)."""

from pathlib import Path

import pytest

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.facs import AU_SETS
from hiva.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted([ROOT / "configs" / "demo.yaml", *(ROOT / "configs" / "ablations").glob("*.yaml")])


def test_the_ablation_set_is_complete():
    names = {p.stem for p in CONFIGS}
    assert {"full", "no_graph", "no_ddca", "no_cdca", "names_only", "random_text",
            "labels_10pct", "demo"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_validates(path):
    cfg = load_config(TrainConfig, path, data="x.parquet")
    mc = cfg.model_config(AU_SETS["bp4d"])
    assert mc.num_aus == 12


def test_bad_configs_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(HivaError, match="learning_rate"):
        load_config(TrainConfig, bad)
    bad.write_text("model:\n  graph_layers: 0\n")
    with pytest.raises(HivaError, match="graph_layers"):
        load_config(TrainConfig, bad)
    with pytest.raises(HivaError, match="label_fraction"):
        TrainConfig(label_fraction=0.0)


def test_yaml_values_are_read_as_their_types_or_named(tmp_path):
    f = tmp_path / "c.yaml"
    # PyYAML reads 1e-3 as a string and `epochs: '5'` is a quoted number: both mean numbers.
    f.write_text("lr: 1e-3\nepochs: '5'\nflip: 'no'\nmodel:\n  d_model: '64'\n  dropout: 0\n")
    cfg = load_config(TrainConfig, f)
    assert cfg.lr == 0.001 and cfg.epochs == 5 and cfg.flip is False
    assert cfg.model == {"d_model": 64, "dropout": 0.0}
    f.write_text("epochs: ten\n")
    with pytest.raises(HivaError, match=r"key epochs: 'ten' is not an integer"):
        load_config(TrainConfig, f)
    f.write_text("lr: fast\n")
    with pytest.raises(HivaError, match=r"key lr: 'fast' is not a number"):
        load_config(TrainConfig, f)
    f.write_text("model:\n  dropout: high\n")
    with pytest.raises(HivaError, match=r"model config key dropout: 'high'"):
        load_config(TrainConfig, f)
    f.write_text("epochs: 2.5\n")  # a fraction is not an epoch count
    with pytest.raises(HivaError, match=r"key epochs: 2.5 is not an integer"):
        load_config(TrainConfig, f)
