"""AU intensity end to end on the training side: ICC(3,1) and MAE against hand computations,
the dataset carrying intensities only for a model with the head, a tiny heads-only run writing
ICC/MAE into its fold results, ``hiva report`` printing them with the F1 bootstrap's intervals,
and a run without the head unchanged."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from hiva.data.dataset import AUDataset
from hiva.data.manifest import read_manifest
from hiva.errors import HivaError
from hiva.train import trainer
from hiva.train.boot_intensity import intensity_comparison
from hiva.train.config import TrainConfig
from hiva.train.evaluate import evaluate
from hiva.train.intensity_metrics import (
    from_sums,
    icc_3_1,
    intensity_metrics,
    intensity_over_folds,
    intensity_sums,
)
from hiva.train.report import run_report, sweep_comparison
from tests.train.conftest import TINY_AUS, TINY_MODEL
from tests.train.test_train_report import make_sweep, noisy

# Shrout & Fleiss (1979), Table 2: six targets rated by four judges; their ICC(3,1) is .71.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
               [6, 2, 4, 7]], dtype=float)


def test_icc_matches_shrout_and_fleiss_and_a_hand_computation():
    assert icc_3_1(SF) == pytest.approx(0.7148, abs=1e-4)
    # Judges 1 and 2 alone, by hand: deviations from the means 23/3 and 5/2 give
    # Σd1·d2 = 10, Σd1² = 40/3, Σd2² = 27/2, and for two raters ICC(3,1) = 2·cov / (var1 + var2)
    # = 20 / (40/3 + 27/2) = 120/161.
    y, p = SF[:, 0], SF[:, 1]
    assert icc_3_1(SF[:, :2]) == pytest.approx(120 / 161, abs=1e-12)
    icc, mae = from_sums(intensity_sums(p[:, None], y[:, None]))
    assert icc[0] == pytest.approx(120 / 161, abs=1e-12)
    assert mae[0] == pytest.approx(np.abs(y - p).mean())  # (7+5+4+6+5+4)/6 = 31/6
    assert mae[0] == pytest.approx(31 / 6)
    # consistency: a constant offset between the raters changes nothing
    assert icc_3_1(np.stack([y, y + 2], 1)) == pytest.approx(1.0)


def test_undefined_icc_is_nan_and_left_out_not_a_crash():
    y = np.array([[0.0, 1.0, np.nan], [0.0, 3.0, np.nan], [0.0, 2.0, 4.0]])
    p = np.array([[0.0, 1.5, 1.0], [0.0, 2.5, 2.0], [0.0, 2.0, 3.0]])
    assert np.isnan(icc_3_1(np.zeros((5, 2))))  # constant ratings: no variance at all
    assert np.isnan(icc_3_1(np.ones((1, 2))))  # one target
    m = intensity_metrics(p, y, (1, 2, 4))
    assert np.isnan(m["icc"][0]) and np.isnan(m["icc"][2])  # constant; a single known frame
    assert m["undefined_icc"] == [1, 4] and m["support"] == [3, 3, 1]
    assert m["mean_icc"] == pytest.approx(m["icc"][1])
    assert m["mae"][2] == pytest.approx(1.0) and m["mae"][0] == 0.0
    none_known = intensity_metrics(p, np.full_like(y, np.nan), (1, 2, 4))
    assert np.isnan(none_known["mean_icc"]) and np.isnan(none_known["mean_mae"])
    over = intensity_over_folds([m, none_known])
    assert over["icc"][1] == pytest.approx(m["icc"][1]) and np.isnan(over["icc"][0])


def test_dataset_reads_intensities_only_with_the_head(tiny_manifest):
    df = read_manifest(tiny_manifest).iloc[:4].copy()
    aus = (1, 2)
    assert "intensity" not in AUDataset(df, aus)[0]  # off: the items are what they were
    df.loc[df.index[1], "AU02_intensity"] = np.nan
    ds = AUDataset(df, aus, intensity=True)
    got = np.stack([ds[i]["intensity"].numpy() for i in range(4)])
    want = df[["AU01_intensity", "AU02_intensity"]].to_numpy(np.float32)
    np.testing.assert_array_equal(got, want)  # NaN stays unknown
    assert np.isnan(got[1, 1])
    with pytest.raises(HivaError, match="no intensity labels.*model.intensity off"):
        AUDataset(df.drop(columns=[c for c in df if c.endswith("_intensity")]), aus,
                  intensity=True)


def _cfg(tmp_path, data, intensity: str, out: str) -> TrainConfig:
    model = dict(TINY_MODEL, text_mode="learned", freeze_backbone=True, intensity=intensity)
    return TrainConfig(data=str(data), model=model, aus=TINY_AUS, num_folds=3, folds=(1,), epochs=2,
                       max_steps_per_epoch=2, batch_size=4, num_workers=0, amp="off",
                       val_fraction=0.25, resize=36, tensorboard=False, progress=False,
                       plots=False, channels_last=False, feature_cache=str(tmp_path / "cache"),
                       out=str(tmp_path / out))


def test_tiny_run_with_the_head_scores_intensity_and_the_report_prints_it(tiny_manifest,
                                                                       tmp_path):
    summary = trainer.run(_cfg(tmp_path, tiny_manifest, "ordinal", "on"))
    fold = summary["folds"]["1"]
    n = len(TINY_AUS.split(","))
    assert len(fold["intensity"]["icc"]) == n and len(fold["intensity"]["mae"]) == n
    assert all(0 <= v <= 5 for v in fold["intensity"]["mae"])
    assert summary["mean_intensity"]["mean_mae"] == pytest.approx(fold["intensity"]["mean_mae"])
    run = tmp_path / "on"
    assert "ICC(3,1)" in (run / "metrics.txt").read_text()
    with open(run / "fold1" / "history.csv") as f:
        assert all(float(r["train_intensity"]) > 0 for r in csv.DictReader(f))
    pred = pd.read_parquet(run / "fold1" / "test_predictions.parquet")
    assert pred["r_AU01"].between(0, 5).all() and "i_AU01" in pred
    # hiva evaluate scores the same weights on decoded images (training read float16 cached
    # maps): the same numbers up to that rounding
    again = evaluate(run, 1, device="cpu")
    assert again["intensity"]["icc"] == pytest.approx(fold["intensity"]["icc"], abs=1e-3)
    text = run_report([run], resamples=50)
    assert "Test intensity: ICC(3,1) / MAE" in text  # the point table
    assert "AU intensity on the 0-5 scale" in text and "Per-AU intensity ICC(3,1)" in text


def test_tiny_run_without_the_head_has_no_intensity(tiny_manifest, tmp_path):
    summary = trainer.run(_cfg(tmp_path, tiny_manifest, "off", "off"))
    run = tmp_path / "off"
    assert "mean_intensity" not in summary and "intensity" not in summary["folds"]["1"]
    assert "ICC" not in (run / "metrics.txt").read_text()
    with open(run / "fold1" / "history.csv") as f:
        assert "train_intensity" not in next(csv.DictReader(f))
    pred = pd.read_parquet(run / "fold1" / "test_predictions.parquet")
    assert not [c for c in pred if c.startswith(("r_AU", "i_AU"))]
    assert "intensity" not in run_report([run], resamples=50)


def _with_intensity(folds: dict[int, pd.DataFrame], noise: float, seed: int):
    """Add intensities: a label 0-5 per frame (some unknown) and a prediction off by noise."""
    rng = np.random.default_rng(seed)
    for df in folds.values():
        y = rng.uniform(0, 5, len(df))
        df["i_AU01"] = np.where(rng.random(len(df)) < 0.1, np.nan, y).astype(np.float32)
        df["r_AU01"] = np.clip(y + rng.normal(0, noise, len(df)), 0, 5).astype(np.float32)
    return folds


def test_report_pools_intensity_per_fold_with_paired_intervals(tmp_path):
    good = [_with_intensity(noisy(0), 0.3, 0), _with_intensity(noisy(1), 0.3, 1)]
    poor = [_with_intensity(noisy(0), 2.0, 2), _with_intensity(noisy(1), 2.0, 3)]
    root = make_sweep(tmp_path, [("poor", 1.0, poor), ("good", 1.0, good),
                                 ("plain", 1.0, [noisy(0)])])
    comp, _ = sweep_comparison(root, resamples=300, seed=0)
    s = intensity_comparison(comp)
    assert s["missing"] == ["plain"]  # a run without the head is named, not mixed in
    g = {x["name"]: x for x in s["groups"]}
    # By hand: per run, per fold the ICC over its known frames (intensity_metrics), mean over
    # folds, then over seeds.
    want = np.mean([np.mean([intensity_metrics(df[["r_AU01"]].to_numpy(),
                                               df[["i_AU01"]].to_numpy(), (1,))["icc"][0]
                             for df in run.values()]) for run in good])
    assert g["good"]["aus"] == [1] and g["good"]["icc"][0] == pytest.approx(want, abs=1e-6)
    assert g["good"]["mean_icc"] == pytest.approx(want, abs=1e-6)
    lo, hi = g["good"]["mean_icc_ci"]
    assert lo <= want <= hi
    subjects, _ = sweep_comparison(root, resamples=300, seed=0, resample="subjects")
    lo, hi = {x["name"]: x for x in intensity_comparison(subjects)["groups"]}["good"][
        "mean_icc_ci"]
    assert lo < want < hi  # the test subjects' draws alone give an interval
    assert g["good"]["delta_icc_ci"][0] > 0 and g["good"]["delta_mae_ci"][1] < 0
    text = run_report([root], reference="poor", resamples=300)
    assert "AU intensity on the 0-5 scale" in text and "(no intensities: plain)" in text
    js = json.loads(json.dumps(s))  # NaN-free, as the report's --json writes it
    assert js["reference"] == "poor"


def test_head_without_intensity_labels_is_refused_before_the_run_folder(tiny_manifest,
                                                                         tmp_path):
    from hiva.data.manifest import write_manifest

    df = read_manifest(tiny_manifest)
    bare = write_manifest(df.drop(columns=[c for c in df if c.endswith("_intensity")]),
                          tmp_path / "bare" / "manifest.parquet", {"source": "test"})
    with pytest.raises(HivaError, match="no intensity labels.*set model.intensity off"):
        trainer.run(_cfg(tmp_path, bare, "regression", "refused"))
    assert not (tmp_path / "refused").exists()
