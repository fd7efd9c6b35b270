"""Label budgets that count every labelled subject, validation included (``label_subjects``):
who is labelled, who validates, and what a run with no validation subject does."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hiva.errors import HivaError
from hiva.train.config import TrainConfig
from hiva.train.protocol import budget_split, label_budget, split_pool


def _pool(n=12, per=3):
    return pd.DataFrame({"subject": [f"S{i:02d}" for i in range(n) for _ in range(per)],
                         "frame": [j for _ in range(n) for j in range(per)]})


def _subjects(df):
    return set(df["subject"])


def test_a_budget_counts_validation_and_nests():
    pool = _pool()
    seen = {}
    for n in (1, 2, 4, 8):
        train, val, all_train = split_pool(TrainConfig(label_subjects=n, seed=3), pool)
        assert len(_subjects(train)) + len(_subjects(val)) == n  # validation is in the budget
        assert len(_subjects(val)) == n // 4 and not _subjects(train) & _subjects(val)
        assert all_train is pool  # schedule: steps sizes every budget by the whole pool
        seen[n] = _subjects(train)
    assert seen[1] <= seen[2] <= seen[4] <= seen[8]  # smaller budgets label a subset
    # the draw is the seed's and the data's: any arm at this seed labels the same subjects
    again = split_pool(TrainConfig(label_subjects=4, seed=3, val_fraction=0.5), pool)
    assert _subjects(again[0]) == seen[4]
    other = split_pool(TrainConfig(label_subjects=4, seed=4), pool)[0]
    assert _subjects(other) != seen[4]
    train, val, _ = budget_split(TrainConfig(label_subjects=4, label_val_subjects=0, seed=3), pool)
    assert len(_subjects(train)) == 4 and val.empty
    assert label_budget(TrainConfig(label_subjects=4, label_val_subjects=0), train, val) == {
        "labelled_subjects": 4, "train_subjects": 4, "val_subjects": 0,
        "rule": "label_subjects", "epoch": "last (no validation subject)",
        "thresholds": "0.5 (no validation subject to tune on)"}


def test_the_old_fraction_rule_is_described_with_its_validation_subjects():
    pool = _pool()
    train, val, _ = split_pool(TrainConfig(label_fraction=0.1, val_fraction=0.34), pool)
    got = label_budget(TrainConfig(label_fraction=0.1), train, val)
    assert got["train_subjects"] == 1 and got["val_subjects"] == 4
    assert got["labelled_subjects"] == 5 and got["rule"] == "label_fraction 0.1 by subject"


@pytest.mark.parametrize("kw, needle", [
    (dict(label_subjects=-1), "label_subjects must be ≥ 0"),
    (dict(label_subjects=2, label_fraction=0.5), "keep label_fraction 1.0"),
    (dict(label_subjects=2, label_val_subjects=2), "at least one subject trains"),
])
def test_bad_budgets_are_one_line(kw, needle):
    with pytest.raises(HivaError, match=needle):
        TrainConfig(**kw)


def test_a_budget_larger_than_the_pool_names_the_fix():
    with pytest.raises(HivaError, match="more than the 12 subjects"):
        split_pool(TrainConfig(label_subjects=13), _pool())


def test_one_labelled_subject_trains_the_last_epoch_at_threshold_half(tiny_manifest, tmp_path,
                                                                      tiny_cfg, cli):
    cfg = tiny_cfg(tmp_path / "c.yaml", label_subjects=1, schedule="steps", epochs=2)
    cli("train", "--config", cfg, "--data", tiny_manifest, "--out", tmp_path / "run")
    m = json.loads((tmp_path / "run" / "fold1" / "metrics.json").read_text())
    assert m["label_budget"]["labelled_subjects"] == 1 and m["subjects"]["val"] == 0
    assert m["best_epoch"] == 2 and "test_tuned" not in m
    from hiva.train.report import run_report

    text = run_report([tmp_path / "run"], resamples=20)
    assert ("Labels, every group: 1 labelled subjects (1 train + 0 validation), epoch last (no "
            "validation subject)") in text
