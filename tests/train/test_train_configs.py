"""Every shipped training config validates (keys, values, the model it builds)."""

from pathlib import Path

import pytest

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.facs import AU_SETS
from hiva.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted([ROOT / "configs" / "demo.yaml", ROOT / "configs" / "bp4d.yaml",
                  *(ROOT / "configs" / "ablations").glob("*.yaml")])


def test_the_ablation_set_is_complete():
    names = {p.stem for p in CONFIGS}
    assert {"full", "no_graph", "no_ddca", "no_cdca", "names_only", "random_text",
            "labels_10pct", "demo"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_validates(path):
    cfg = load_config(TrainConfig, path, data="x.parquet")
    mc = cfg.model_config(AU_SETS["bp4d"])
    assert mc.num_aus == 12


def test_the_bp4d_recipe_is_the_fields_setting():
    """The README's quick start for BP4D: ResNet-50 at 224 on 256, 3 folds, the KL region prior."""
    cfg = load_config(TrainConfig, ROOT / "configs" / "bp4d.yaml", data="x.parquet")
    assert (cfg.model.backbone, cfg.model.input_size, cfg.num_folds) == ("resnet50", 224, 3)
    assert cfg.resize is None and cfg.flip and cfg.model.map_prior == "kl"


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
    assert (cfg.model.d_model, cfg.model.dropout) == (64, 0.0)
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


def test_set_overrides_any_key_between_file_and_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.01\nepochs: 3\nmodel:\n  d_model: 64\n  num_heads: 2\n")
    cfg = load_config(TrainConfig, f, ["lr=1e-3", "model.d_model=128", "folds=[1, 2]"],
                      epochs=7, model={"dropout": 0.2})
    assert cfg.lr == 0.001 and cfg.epochs == 7 and cfg.folds == (1, 2)
    # the model section merges key by key: file (num_heads), --set (d_model), flag (dropout)
    assert (cfg.model.d_model, cfg.model.num_heads, cfg.model.dropout) == (128, 2, 0.2)
    cfg = load_config(TrainConfig, f, ["epochs=9"], epochs=7)
    assert cfg.epochs == 7  # a named flag wins over --set


@pytest.mark.parametrize("item, match", [
    ("lr", r"--set 'lr': write KEY=VALUE"),
    ("=3", r"--set '=3': write KEY=VALUE"),
    ("model..d_model=3", r"write KEY=VALUE"),
    ("nope=3", r"unknown key\(s\) in the config for TrainConfig: nope"),
    ("model.nope=3", r"unknown key\(s\) in the model config: nope"),
    ("lr=fast", r"key lr: 'fast' is not a number"),
])
def test_bad_set_items_are_named(item, match):
    with pytest.raises(HivaError, match=match):
        load_config(TrainConfig, None, [item])


def test_saved_config_leaves_the_runs_aus_out_of_the_model_section(tmp_path):
    from hiva.config import config_dict, write_config

    cfg = TrainConfig(model={"d_model": 64, "num_heads": 2, "graph_k": 3}, aus="1,2,4,6")
    d = config_dict(cfg)
    assert "aus" not in d["model"] and d["model"]["d_model"] == 64
    write_config(cfg, tmp_path / "config.yaml")
    again = load_config(TrainConfig, tmp_path / "config.yaml")
    assert again == cfg and config_dict(again) == d
    assert cfg.model_config((1, 2, 4, 6)).graph_k == 3  # checked against the run's 4 AUs
    with pytest.raises(HivaError, match="graph_k must be in 1..2"):
        cfg.model_config((1, 2))


def test_train_cli_takes_set(tmp_path):
    from tests.helpers import run_cli

    r = run_cli("train", "--data", tmp_path / "none.parquet", "--set", "model.d_model=30",
                "--set", "model.num_heads=4", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "d_model (30) must be divisible by num_heads (4)" in r.stderr + r.stdout
