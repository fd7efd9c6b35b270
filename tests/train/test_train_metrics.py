"""Metrics against hand computation."""

import math

import numpy as np
import pytest

from hiva.train.metrics import au_metrics, f1_from_counts, mean_over_folds, tune_thresholds


def test_f1_matches_hand_counts_summed_over_the_fold():
    probs = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.1], [0.2, 0.8], [0.7, 0.3]])
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0], [1, 1]])
    mask = np.array([[1, 1], [1, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    m = au_metrics(probs, y, mask, aus=[1, 12])
    # AU1: preds 1,1,0,0,1 vs y 1,0,1,0,1 → TP 2, FP 1, FN 1 → F1 = 4/6.
    # AU12: row 3 unknown; preds 0,1,0,_,0 vs y 0,1,0,_,1 → TP 1, FP 0, FN 1 → F1 = 2/3.
    assert m["f1"] == pytest.approx([4 / 6, 2 / 3])
    assert m["mean_f1"] == pytest.approx((4 / 6 + 2 / 3) / 2)
    assert m["support"] == [5, 4]
    assert m["accuracy"] == pytest.approx([3 / 5, 3 / 4])
    # All-positive: AU1 3 pos of 5 → 2·3/(2·3+2) = 0.75; AU12 2 of 4 → 4/6.
    assert m["baseline_f1"] == pytest.approx([0.75, 4 / 6])
    # AUC by hand for AU1: positives {0.9, 0.4, 0.7} vs negatives {0.6, 0.2}: 5 of 6 pairs won.
    assert m["auc"][0] == pytest.approx(5 / 6)


def test_f1_edge_cases_and_nan_auc():
    assert f1_from_counts([0], [0], [0]).tolist() == [0.0]
    m = au_metrics(np.array([[0.9], [0.8]]), np.array([[1], [1]]))
    assert m["f1"] == [1.0] and math.isnan(m["auc"][0]) and math.isnan(m["mean_auc"])


def test_thresholds_tuned_on_validation_and_fold_mean():
    p = np.array([[0.3], [0.35], [0.1], [0.2]])
    y = np.array([[1], [1], [0], [0]])
    th = tune_thresholds(p, y)
    assert 0.2 < th[0] <= 0.3
    assert au_metrics(p, y, thresholds=th)["f1"] == [1.0]
    a = au_metrics(p, y)
    b = au_metrics(np.array([[0.9], [0.1]]), np.array([[1], [0]]))
    mean = mean_over_folds([a, b])
    assert mean["mean_f1"] == pytest.approx((a["mean_f1"] + b["mean_f1"]) / 2)
