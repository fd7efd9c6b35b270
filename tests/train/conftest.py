"""A tiny synthetic face set (6 subjects × 6 images, 64 px) and a tiny model config, so a
training step costs well under a second on a loaded 2-core machine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import run_cli

TINY_MODEL = dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32,
                  num_heads=2, text_mode="random", random_text_tokens=2, dropout=0.1)
TINY_AUS = "1,2,4,6,12,25"


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    from hiva.data.synth import render_synthetic

    out = tmp_path_factory.mktemp("synth")
    return render_synthetic(out / "set", subjects=6, per_subject=6, seed=0, size=64, workers=1,
                            grid=False, progress=False)


def write_cfg(path: Path, **kw) -> Path:
    base = dict(model=dict(TINY_MODEL), aus=TINY_AUS, num_folds=3, folds=[1], epochs=1,
                max_steps_per_epoch=2, batch_size=4, num_workers=0, amp="off",
                val_fraction=0.25, resize=36, tensorboard=True, progress=False,
                channels_last=False)
    base.update(kw)
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.fixture(scope="session")
def cli():
    """``cli(*args, check=True) -> CompletedProcess`` running ``python -m hiva.cli``."""
    return run_cli


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(path, **overrides) -> path`` writing a tiny TrainConfig YAML."""
    return write_cfg
