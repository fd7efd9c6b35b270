"""Unseen AUs (``zero_shot_aus``): their labels reach neither the loss nor the epoch choice, the
test fold still scores them; and the trainer records the DDCA attention entropy over descriptions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.runtime import Dist
from hiva.textbank import load_text
from hiva.train import protocol, trainer
from hiva.train.config import TrainConfig


def _cfg(tiny_cfg, tmp_path, manifest, **kw) -> TrainConfig:
    kw = dict(dict(tensorboard=False, plots=False), **kw)
    return load_config(TrainConfig, tiny_cfg(tmp_path / "c.yaml", **kw), data=str(manifest),
                       out=str(tmp_path / "run"))


def test_withheld_aus_are_unknown_in_training_and_validation(tiny_manifest, tiny_cfg, tmp_path):
    cfg = _cfg(tiny_cfg, tmp_path, tiny_manifest, zero_shot_aus="2,4")
    df, scheme = protocol.load_data(cfg.data)
    aus = protocol.resolve_aus(cfg, df)
    _, made = protocol.make_folds(cfg, df, scheme)
    k, pool, test = made[0]
    run = trainer.FoldRun(cfg, k, pool, test, aus, load_text(cfg.model, aus), Dist(),
                          torch.device("cpu"))
    col = {a: i for i, a in enumerate(aus)}
    for ds in (run.ds_train, run.ds_val):
        assert not ds.mask[:, [col[2], col[4]]].any()  # no label of AU2/AU4 is known
        assert ds.mask[:, col[1]].all()  # the others keep theirs
    assert run.ds_test.mask[:, col[2]].all()  # the test fold scores them
    assert run.ds_test.target[:, col[2]].sum() > 0


def test_a_withheld_aus_training_labels_change_nothing(tiny_manifest, tiny_cfg, tmp_path):
    """The withheld AU's labels on the training and validation subjects reach no loss, no epoch
    choice and no tuned threshold: flipping every one of them leaves the run identical, and its
    tuned threshold is 0.5 (its test F1 tuned equals its F1 at 0.5)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiva.train.trainer import run as train_run

    table = pq.read_table(tiny_manifest)
    df = table.to_pandas()
    cfg0 = _cfg(tiny_cfg, tmp_path, tiny_manifest, zero_shot_aus="2", epochs=2, progress=False)
    _, made = protocol.make_folds(cfg0, *protocol.load_data(cfg0.data))
    test_subjects = set(made[0][2]["subject"])
    flipped = df.copy()
    keep = flipped["subject"].isin(test_subjects)
    flipped.loc[~keep, "AU02"] = 1.0 - flipped.loc[~keep, "AU02"]
    assert flipped.loc[~keep, "AU02"].nunique() == 2  # both labels occur: the flip matters
    other = tiny_manifest.parent / "au2-flipped.parquet"  # beside it: same relative image paths
    pq.write_table(pa.Table.from_pandas(flipped, preserve_index=False)
                   .replace_schema_metadata(table.schema.metadata), other)
    got = []
    for name, data in (("a", tiny_manifest), ("b", other)):
        cfg = _cfg(tiny_cfg, tmp_path, data, zero_shot_aus="2", epochs=2, progress=False,
                   tensorboard=False)
        cfg = type(cfg)(**{**cfg.__dict__, "out": str(tmp_path / name)})
        train_run(cfg)
        m = json.loads((tmp_path / name / "fold1" / "metrics.json").read_text())
        p = pd.read_parquet(tmp_path / name / "fold1" / "test_predictions.parquet")
        got.append((m, p))
    (ma, pa_), (mb, pb) = got
    assert ma["best_epoch"] == mb["best_epoch"]
    prob = [c for c in pa_.columns if c.startswith("p_")]
    np.testing.assert_allclose(pa_[prob].to_numpy(float), pb[prob].to_numpy(float), atol=1e-6)
    i = [1, 2, 4, 6, 12, 25].index(2)
    assert ma["test_tuned"]["f1"][i] == ma["test"]["f1"][i]
    assert ma["test_tuned"] == mb["test_tuned"]


def test_zero_shot_run_reports_the_unseen_au(tiny_manifest, tiny_cfg, tmp_path, cli):
    path = tiny_cfg(tmp_path / "z.yaml", zero_shot_aus="2", model=dict(
        backbone="resnet18", pretrained="none", input_size=32, d_model=32, num_heads=2,
        text_mode="random", random_text_tokens=3))
    cli("train", "--config", path, "--data", tiny_manifest, "--out", tmp_path / "run")
    m = json.loads((tmp_path / "run" / "fold1" / "metrics.json").read_text())
    assert m["zero_shot_aus"] == [2]
    i = [1, 2, 4, 6, 12, 25].index(2)
    assert np.isfinite(m["test"]["auc"][i])  # scored on the test fold
    ent = m["text_attention"]
    assert ent["descriptions"] == [3] * 6
    assert all(0.0 <= e <= mx + 1e-4 for e, mx in zip(ent["entropy"], ent["max_entropy"]))
    assert ent["max_entropy"][0] == pytest.approx(np.log(3), abs=1e-4)


def test_bad_zero_shot_aus_are_named(tiny_manifest, tiny_cfg, tmp_path, cli):
    r = cli("train", "--config", tiny_cfg(tmp_path / "b.yaml"), "--data", tiny_manifest,
            "--out", tmp_path / "b", "--zero-shot-aus", "9", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "zero_shot_aus 9 not among this run's AUs (1, 2, 4, 6, 12, 25)" in r.stderr
    with pytest.raises(HivaError, match="withholds every AU"):
        protocol.check_zero_shot(TrainConfig(zero_shot_aus="1,2"), (1, 2))
    assert TrainConfig(zero_shot_aus="2").zero_shot_aus == (2,)
    assert TrainConfig(zero_shot_aus=[2, 4]).zero_shot_aus == (2, 4)
