"""What a fold's evaluation reports: the validation score that picks the epoch, and the test
result written to the fold's metrics.json (F1/AUC at 0.5, thresholds tuned on validation reported
apart, the label budget, map scores, the attention over descriptions). Used by the trainer."""

from __future__ import annotations

import math

import numpy as np

from hiva.runtime import Dist
from hiva.train.config import TrainConfig
from hiva.train.intensity_metrics import intensity_metrics
from hiva.train.metrics import au_metrics, localisation_scores, tune_thresholds
from hiva.train.protocol import label_budget, subject_ids
from hiva.train.steps import predict


def validate(model, ds_val, cfg: TrainConfig, device, text, d: Dist, amp, loss_fn, aus,
             epoch: int) -> tuple[dict, float]:
    """(history columns, selection score) of one epoch; higher score = better. Without a
    validation set the last epoch is the pick."""
    if ds_val is None:
        return {}, float(epoch)
    pv = predict(model, ds_val, cfg, device, text, d, amp, loss_fn)
    vm = au_metrics(pv.probs, pv.targets, pv.mask, aus)
    score = vm["mean_f1"] if cfg.select_metric == "mean_f1" else -pv.loss
    row = {"val_loss": pv.loss, "val_mean_f1": vm["mean_f1"], "val_mean_auc": vm["mean_auc"]}
    return row, (-math.inf if score != score else score)


def fold_result(fr, pt, best_epoch: int) -> dict:
    """The metrics.json of a tested fold: ``fr`` the ``FoldRun`` (its data, model and text),
    ``pt`` its test predictions with the picked weights."""
    cfg, aus = fr.cfg, fr.aus
    train_df, val_df, test_df = fr.train_df, fr.val_df, fr.test_df
    result = {
        "fold": fr.k, "epochs": cfg.epochs, "best_epoch": best_epoch,
        "frames": {"train": len(fr.ds_train), "val": len(fr.ds_val or []),
                   "test": len(fr.ds_test), "test_scored": len(pt.index)},
        "subjects": {"train": int(train_df["subject"].nunique()),
                     "val": int(val_df["subject"].nunique()),
                     "test": int(test_df["subject"].nunique())},
        "subject_ids": {"train": subject_ids(train_df), "val": subject_ids(val_df),
                        "test": subject_ids(test_df)},
        "test": au_metrics(pt.probs, pt.targets, pt.mask, aus),
        "label_budget": label_budget(cfg, train_df, val_df),
    }
    if fr.zero_shot:
        result["zero_shot_aus"] = list(fr.zero_shot)
    if pt.text_entropy is not None:
        # Entropy of each AU's attention over its descriptions, against log M (uniform).
        m = (fr.val_text[1].sum(1).numpy() if fr.val_text is not None
             else np.full(len(aus), fr.mc.learned_tokens))
        result["text_attention"] = {
            "entropy": pt.text_entropy.mean(0).round(4).tolist(),
            "max_entropy": np.log(np.maximum(m, 1)).round(4).tolist(),
            "descriptions": m.astype(int).tolist()}
    if cfg.tune_thresholds and fr.ds_val is not None:
        pv = predict(fr.model, fr.ds_val, cfg, fr.device, fr.val_text, fr.d, fr.amp)
        th = tune_thresholds(pv.probs, pv.targets, pv.mask)
        result["test_tuned"] = au_metrics(pt.probs, pt.targets, pt.mask, aus, thresholds=th)
    if pt.localisation is not None:
        result["localisation"] = localisation_scores(pt.localisation, pt.targets, pt.mask, aus)
    if pt.intensity is not None:  # the intensity head: ICC(3,1) and MAE per AU
        result["intensity"] = intensity_metrics(pt.intensity, pt.intensity_targets, aus)
    return result
