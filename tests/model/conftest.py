"""Toy HiVA models: resnet18 random init at 64×64 (a 2×2 feature map), d=32, text width 16."""

from __future__ import annotations

import pytest
import torch

from hiva.model.config import ModelConfig

TEXT_DIM = 16
SIZE = 64


def _toy_cfg(**kw) -> ModelConfig:
    base = dict(
        aus="bp4d", backbone="resnet18", pretrained=None, input_size=SIZE, d_model=32,
        num_heads=2, text_dim=TEXT_DIM, dropout=0.0,
    )
    base.update(kw)
    return ModelConfig(**base)


def _toy_batch(cfg: ModelConfig, b: int = 2, m: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, SIZE, SIZE, generator=g)
    text = torch.randn(cfg.num_aus, m, cfg.text_dim, generator=g)
    targets = (torch.rand(b, cfg.num_aus, generator=g) > 0.5).float()
    targets[0, 0] = 1.0  # at least one positive so the alignment term is live
    return images, text, targets


@pytest.fixture
def toy_cfg():
    """``toy_cfg(**overrides) -> ModelConfig``."""
    return _toy_cfg


@pytest.fixture
def toy_batch():
    """``toy_batch(cfg, b=2, m=3, seed=0) -> (images, text, targets)``."""
    return _toy_batch


@pytest.fixture
def cfg() -> ModelConfig:
    return _toy_cfg()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
