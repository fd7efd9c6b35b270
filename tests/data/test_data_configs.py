"""SynthConfig and AlignConfig check themselves: each bad value is one line naming its rule;
``--set KEY=VALUE`` reaches keys that have no flag of their own."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hiva.cli import app
from hiva.data.align import AlignConfig
from hiva.data.manifest import write_manifest
from hiva.data.synth import SynthConfig, render_synthetic
from hiva.errors import HivaError


def _line(stage: str, rule: str) -> str:
    return f"bad {stage} config: {rule}; fix the config or flag"


@pytest.mark.parametrize("key, value, rule", [
    ("out", " ", "out must name a folder"),
    ("subjects", 0, "subjects must be ≥ 1, got 0"),
    ("per_subject", -2, "per_subject must be ≥ 1, got -2"),
    ("seed", -1, "seed must be ≥ 0, got -1"),
    ("size", 63, "size must be in 64..512 pixels (128..256 recommended), got 63"),
    ("size", 513, "size must be in 64..512 pixels (128..256 recommended), got 513"),
    ("difficulty", 1.5, "difficulty must be in 0..1 (0 clear .. 1 subtle), got 1.5"),
    ("difficulty", -0.1, "difficulty must be in 0..1 (0 clear .. 1 subtle), got -0.1"),
    ("workers", -1, "workers must be ≥ 0 (0 = all cores), got -1"),
    ("grid", "yes", "grid must be true or false, got 'yes'"),
    ("jpeg_quality", 101,
     "jpeg_quality must be in 1..100, or 0 for a random one per image in 60..95, got 101"),
])
def test_synth_config_bad_value_is_one_line(key, value, rule):
    with pytest.raises(HivaError) as e:
        SynthConfig(**{key: value})
    assert str(e.value) == _line("synth", rule)


def test_synth_config_edges_are_fine():
    SynthConfig(subjects=1, per_subject=1, seed=0, size=64, difficulty=0.0, workers=0,
                grid=False, jpeg_quality=0)
    SynthConfig(size=512, difficulty=1.0, jpeg_quality=100)


def test_render_synthetic_checks_before_writing(tmp_path):
    with pytest.raises(HivaError, match="size must be in 64..512"):
        render_synthetic(tmp_path / "s", subjects=1, per_subject=1, size=32, progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("key, value, rule", [
    ("manifest", "", "manifest must name a manifest file"),
    ("out", "", "out must name a folder"),
    ("size", 31, "size must be in 32..1024 pixels, got 31"),
    ("size", 2048, "size must be in 32..1024 pixels, got 2048"),
    ("min_confidence", 1.2, "min_confidence must be in 0..1, got 1.2"),
    ("pick", "biggest", "pick must be one of largest, most-confident, got 'biggest'"),
    ("quality", 0, "quality must be in 1..100, got 0"),
    ("quality", 101, "quality must be in 1..100, got 101"),
])
def test_align_config_bad_value_is_one_line(key, value, rule):
    with pytest.raises(HivaError) as e:
        AlignConfig(**{key: value})
    assert str(e.value) == _line("align", rule)


def test_synth_set_reaches_a_key_without_a_flag(tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(app, ["data", "synth", "--out", str(out), "--subjects", "1",
                                 "--per-subject", "1", "--size", "64", "--workers", "1",
                                 "--no-grid", "--set", "jpeg_quality=80"])
    assert r.exit_code == 0, r.output
    assert yaml.safe_load((out / "config.yaml").read_text())["jpeg_quality"] == 80
    r = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "t"),
                                 "--set", "jpeg_quality=101"])
    assert r.exit_code != 0 and "bad synth config: jpeg_quality" in str(r.exception)


def test_align_set_reaches_a_key_without_a_flag(tmp_path):
    # The one image is not there: no face detector is needed, the run ends with its one-line
    # error after writing the resolved config.
    m = tmp_path / "m.parquet"
    write_manifest(pd.DataFrame({"path": [str(tmp_path / "gone.png")], "subject": ["a"],
                                 "sequence": "", "frame": [0], "AU01": [1]}), m)
    out = tmp_path / "al"
    r = CliRunner().invoke(app, ["data", "align", str(m), "--out", str(out),
                                 "--set", "quality=77"])
    assert isinstance(r.exception, HivaError) and "no face found" in str(r.exception)
    assert yaml.safe_load((out / "config.yaml").read_text())["quality"] == 77
    r = CliRunner().invoke(app, ["data", "align", str(m), "--out", str(out), "--set", "quality=0"])
    assert str(r.exception) == _line("align", "quality must be in 1..100, got 0")
