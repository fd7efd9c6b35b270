"""Metrics against hand computation."""

import math

import numpy as np
import pytest

from hiva.train.metrics import (
    au_metrics,
    f1_from_counts,
    format_table,
    mean_over_folds,
    tune_thresholds,
)


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


def test_probability_at_the_threshold_is_positive():
    # p >= th is a positive prediction: at exactly 0.5 the frame counts as predicted present.
    p = np.array([[0.5], [0.5], [0.49]])
    y = np.array([[1], [0], [1]])
    m = au_metrics(p, y)
    # TP 1 (row 0), FP 1 (row 1), FN 1 (row 2) → F1 = 2/4.
    assert m["f1"] == [0.5]
    assert au_metrics(np.array([[0.3]]), np.array([[1]]), thresholds=[0.3])["f1"] == [1.0]


def test_au_without_positives_is_undefined_not_zero():
    p = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.6, 0.1, 0.4]])
    y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    mask = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]], dtype=bool)  # AU 3: no known label
    m = au_metrics(p, y, mask, aus=[1, 2, 4])
    assert m["f1"][0] == 1.0
    assert math.isnan(m["f1"][1]) and math.isnan(m["f1"][2])  # no positive label: undefined
    assert math.isnan(m["baseline_f1"][1]) and math.isnan(m["accuracy"][2])
    assert m["accuracy"][1] == pytest.approx(2 / 3)  # negatives only: accuracy is defined
    assert m["undefined_f1"] == [2, 4]
    assert m["mean_f1"] == 1.0  # the mean of the defined AUs only
    assert m["mean_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    table = format_table({"fold1": m}, [1, 2, 4])
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()}
    assert rows["AU02"] == ["n/a"] and rows["AU04"] == ["n/a"] and rows["F1"] == ["100.0"]
    assert "fold1: AU02, AU04" in table and "left out of the mean" in table
    other = au_metrics(p, np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0]]), aus=[1, 2, 4])
    folds = mean_over_folds([m, other])
    assert folds["f1"][1] == pytest.approx(other["f1"][1])  # the folds where it is defined
    assert folds["undefined_f1"] == {"1": [2, 4]}
