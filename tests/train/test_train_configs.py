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
