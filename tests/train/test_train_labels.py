"""Limited labels as annotation budgets are spent: by subject or by contiguous segment, never
random frames; the same draw for every arm at a seed; ``schedule: steps`` keeps the step count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hiva.config import load_config
from hiva.data.folds import limit_labels
from hiva.data.manifest import read_manifest
from hiva.errors import HivaError
from hiva.runtime import Dist
from hiva.textbank import load_text
from hiva.train import protocol, trainer
from hiva.train.config import TrainConfig
from hiva.train.steps import epoch_indices


def _frames(subjects=10, sequences=2, frames=20) -> pd.DataFrame:
    rows = [dict(subject=f"S{s:02d}", sequence=f"T{q}", frame=f, path=f"S{s}/T{q}/{f}.jpg")
            for s in range(subjects) for q in range(sequences) for f in range(frames)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # stored in no particular order


def test_by_subject_keeps_whole_subjects():
    df = _frames()
    kept = limit_labels(df, 0.3, "subject", seed=1)
    subjects = set(kept["subject"])
    assert len(subjects) == 3
    # a subject is either labelled with every frame or not at all
    assert len(kept) == len(df[df["subject"].isin(subjects)])
    assert limit_labels(df, 0.3, "subject", seed=1).equals(kept)  # seeded
    assert set(limit_labels(df, 0.3, "subject", seed=2)["subject"]) != subjects
    assert len(set(limit_labels(df, 0.01, "subject", seed=0)["subject"])) == 1  # at least one
    assert limit_labels(df, 1.0, "subject", seed=0) is df


def test_by_segment_keeps_one_contiguous_run_per_sequence():
    df = _frames()
    kept = limit_labels(df, 0.25, "segment", seed=3)
    assert set(kept["subject"]) == set(df["subject"])  # every subject, a little of each
    for _, g in kept.groupby(["subject", "sequence"]):
        f = np.sort(g["frame"].to_numpy())
        assert len(f) == 5 and (np.diff(f) == 1).all()
    starts = kept.groupby(["subject", "sequence"])["frame"].min()
    assert starts.nunique() > 1  # seeded offsets, not always the first frames
    with pytest.raises(HivaError, match="label_by 'frame': use subject or segment"):
        limit_labels(df, 0.5, "frame")


def _cfg(tiny_cfg, tmp_path, manifest, name, **kw) -> TrainConfig:
    kw = dict(dict(tensorboard=False, plots=False, max_steps_per_epoch=None), **kw)
    return load_config(TrainConfig, tiny_cfg(tmp_path / f"{name}.yaml", **kw),
                       data=str(manifest), out=str(tmp_path / name))


def _pool(cfg):
    df, scheme = protocol.load_data(cfg.data)
    _, made = protocol.make_folds(cfg, df, scheme)
    return made[0]


def test_every_arm_trains_on_the_same_labelled_frames(tiny_manifest, tiny_cfg, tmp_path):
    a = _cfg(tiny_cfg, tmp_path, tiny_manifest, "a", label_fraction=0.5)
    b = _cfg(tiny_cfg, tmp_path, tiny_manifest, "b", label_fraction=0.5,
             model=dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32,
                        num_heads=2, text_mode="random", graph=False, ddca=False))
    full = _cfg(tiny_cfg, tmp_path, tiny_manifest, "full")
    _, pool, _ = _pool(a)
    train_a, val_a, all_a = protocol.split_pool(a, pool)
    train_b, val_b, _ = protocol.split_pool(b, pool)
    train_full, val_full, _ = protocol.split_pool(full, pool)
    assert train_a.index.equals(train_b.index) and val_a.index.equals(val_b.index)
    assert val_a.index.equals(val_full.index)  # validation does not shrink with the labels
    assert train_full.index.equals(all_a.index) and len(train_a) < len(train_full)
    assert not set(train_a["subject"]) & set(val_a["subject"])


def _steps(cfg) -> int:
    k, pool, test = _pool(cfg)
    df = read_manifest(cfg.data)
    aus = protocol.resolve_aus(cfg, df)
    run = trainer.FoldRun(cfg, k, pool, test, aus, load_text(cfg.model, aus), Dist(),
                          torch.device("cpu"))
    return run.steps_per_epoch


def test_schedule_steps_keeps_the_optimizer_steps_of_the_full_set(tiny_manifest, tiny_cfg,
                                                                 tmp_path):
    kw = dict(batch_size=2)
    full = _steps(_cfg(tiny_cfg, tmp_path, tiny_manifest, "f", **kw))
    few = _steps(_cfg(tiny_cfg, tmp_path, tiny_manifest, "e", label_fraction=0.34, **kw))
    same = _steps(_cfg(tiny_cfg, tmp_path, tiny_manifest, "s", label_fraction=0.34,
                       schedule="steps", **kw))
    assert few < full and same == full


def test_epoch_indices_cycle_a_small_share():
    idx = epoch_indices(4, epoch=2, seed=0, d=Dist(), length=10)
    assert len(idx) == 10 and set(idx) == {0, 1, 2, 3}
    assert idx == epoch_indices(4, epoch=2, seed=0, d=Dist(), length=10)
    assert epoch_indices(5, 0, 0, Dist()) == epoch_indices(5, 0, 0, Dist(), length=5)
