"""The evaluation protocol of ``hiva train``: which data, which AUs, which folds, which subjects
train, validate and test, and what a run folder may be resumed with; the summary over folds.

Folds: the manifest's ``fold`` column, else the standard BP4D/DISFA folds numbered as ME-GraphAU
numbers them (fold 1 tests part 3), else subject k-fold (``hiva.data.folds``). Imports pandas and
numpy through the data modules, never torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hiva.config import config_dict, wrote_config
from hiva.errors import HivaError
from hiva.facs import au_column, parse_aus
from hiva.runs import RUN_CONFIG, fold_label, has_trained
from hiva.runtime import Dist
from hiva.train.config import TrainConfig
from hiva.train.intensity_metrics import intensity_over_folds, intensity_table
from hiva.train.metrics import format_table, mean_over_folds

# Keys that may change between a run and its resume without changing what is computed.
RESUME_FREE = {"resume", "progress", "num_workers", "folds", "tensorboard", "plots", "out",
                "eval_batch_size", "device", "epochs",  # epochs: a resume may train longer
                "feature_cache"}  # where cached maps live, not what they are


def load_data(spec: str):
    """(manifest DataFrame, default fold scheme) for a manifest path, ``bp4d:DIR`` or
    ``disfa:DIR``."""
    from hiva.data.manifest import read_manifest

    if not spec:
        raise HivaError("no training data; pass --data MANIFEST.parquet, bp4d:DIR or disfa:DIR")
    kind, _, rest = spec.partition(":")
    if kind in ("bp4d", "disfa") and rest:
        from hiva.data import importers

        fn = importers.import_bp4d if kind == "bp4d" else importers.import_disfa
        df, _report = fn(rest)
        return df, kind
    return read_manifest(spec), "auto"


def read_data(cfg: TrainConfig, d: Dist):
    """(manifest DataFrame, default fold scheme, AUs) of the run: ``cfg.data`` loaded, its images
    checked (``check_images``) and the AUs it learns resolved (``resolve_aus``)."""
    df, scheme = load_data(cfg.data)
    check_images(df, cfg.data, d)
    aus = resolve_aus(cfg, df)
    if cfg.model.has_intensity:  # refused before the run folder is made, not at its first fold
        from hiva.data.dataset import intensity_targets

        intensity_targets(df.iloc[:0], aus)
    return df, scheme, aus


def resolve_aus(cfg: TrainConfig, df) -> tuple[int, ...]:
    from hiva.data.manifest import manifest_aus

    have = manifest_aus(df)
    want = have if cfg.aus is None else parse_aus(cfg.aus)
    missing = [a for a in want if a not in have]
    if missing:
        raise HivaError(
            f"the data has no label column for AU {', '.join(map(str, missing))}; "
            f"it labels {', '.join(map(str, have))}: pass --aus from those"
        )
    empty = [a for a in want if not df[au_column(a)].notna().any()]
    if empty:  # it would train on nothing and report "F1 undefined" as if no AU were present
        keep = [a for a in want if a not in empty]
        raise HivaError(
            f"{', '.join(au_column(a) for a in empty)} has no known label in the data "
            f"({len(df)} frames: every one unknown); pass --aus {','.join(map(str, keep))} "
            "without it, or fix the labels"
        )
    return want


def check_zero_shot(cfg: TrainConfig, aus) -> tuple[int, ...]:
    """``cfg.zero_shot_aus``, checked against the run's AUs (at least one AU must keep labels)."""
    z = cfg.zero_shot_aus
    bad = [a for a in z if a not in aus]
    if bad:
        raise HivaError(f"zero_shot_aus {', '.join(map(str, bad))} not among this run's AUs "
                        f"({', '.join(map(str, aus))}); pick AUs the data labels")
    if z and len(set(z)) >= len(aus):
        raise HivaError("zero_shot_aus withholds every AU; keep at least one AU's labels")
    return z


def withhold_labels(df, aus):
    """``df`` with the label (and intensity) columns of ``aus`` set unknown (NaN): no loss, no
    positives or negatives for the alignment term, no say in picking the epoch."""
    import pandas as pd

    if not aus or len(df) == 0:
        return df
    df = df.copy()
    for a in aus:
        for col in (au_column(a), f"{au_column(a)}_intensity"):
            if col == au_column(a) or col in df.columns:
                df[col] = pd.array([pd.NA] * len(df), dtype="Float64")
    return df


def make_folds(cfg: TrainConfig, df, scheme: str):
    """(scheme used, [(k, train_pool_df, test_df)] for the folds to run).

    ``scheme`` is the data's default (``bp4d``/``disfa`` for raw trees, ``auto`` for a manifest);
    ``cfg.fold_scheme`` other than auto overrides it. ``auto`` resolves to the manifest's ``fold``
    column, else the standard BP4D/DISFA folds when the subjects are theirs, else subject k-fold.
    """
    from hiva.data.folds import assign_folds, resolve_scheme, split_train_val

    if cfg.num_folds == 1:
        train, test = split_train_val(df, cfg.test_fraction, cfg.fold_seed)
        return "split", [(1, train, test)]
    scheme = resolve_scheme(df, scheme if cfg.fold_scheme == "auto" else cfg.fold_scheme)
    if scheme in ("bp4d", "disfa") and cfg.num_folds != 3:
        raise HivaError(f"the {scheme} protocol has 3 folds; use --num-folds 3 (or 1)")
    fold = assign_folds(df, scheme, cfg.num_folds, cfg.fold_seed)
    have = sorted(set(fold.tolist()))
    if have != list(range(1, cfg.num_folds + 1)):
        raise HivaError(f"the {scheme} folds of this data are {have}, not 1..{cfg.num_folds}; "
                        f"pass --num-folds {max(have)} or --fold-scheme kfold")
    wanted = cfg.folds or tuple(range(1, cfg.num_folds + 1))
    return scheme, [(k, df[fold != k], df[fold == k]) for k in wanted]


def split_pool(cfg: TrainConfig, pool):
    """Training pool → (train, val, all_train): validation subjects held out first, then, for a
    limited-label run, the labelled share of the rest (``label_fraction`` by ``label_by``).
    ``all_train`` is the training set before that share was drawn (``schedule: steps`` sizes the
    schedule by it). The validation subjects are the same at every label fraction. With a
    ``label_subjects`` budget: ``budget_split``."""
    from hiva.data.folds import limit_labels, split_train_val

    if cfg.label_subjects:
        return budget_split(cfg, pool)
    train, val = split_train_val(pool, cfg.val_fraction, cfg.seed)
    return limit_labels(train, cfg.label_fraction, cfg.label_by, cfg.seed), val, train


def budget_val_subjects(cfg: TrainConfig) -> int:
    """How many of the ``label_subjects`` budget validate (the rest train)."""
    n = cfg.label_subjects
    return cfg.label_val_subjects if cfg.label_val_subjects >= 0 else n // 4


def budget_split(cfg: TrainConfig, pool):
    """(train, val, pool) for a budget of ``label_subjects`` labelled subjects, validation
    counted: a seeded order of the pool's subjects, its first N labelled, the last
    ``budget_val_subjects`` of those validating. The order depends on the seed and the data
    only (every arm at a seed labels the same subjects), and budgets nest: the training
    subjects of a smaller budget are among those of a larger one."""
    subjects = subject_ids(pool)
    n, n_val = cfg.label_subjects, budget_val_subjects(cfg)
    if n > len(subjects):
        raise HivaError(f"label_subjects {n} is more than the {len(subjects)} subjects of the "
                        "training pool; lower it or use more subjects")
    order = [subjects[i] for i in np.random.default_rng([cfg.seed, 104_729])
             .permutation(len(subjects))[:n]]
    val, train = set(order[n - n_val:]), set(order[:n - n_val])
    ids = pool["subject"].astype(str)
    return pool[ids.isin(train)], pool[ids.isin(val)], pool


def label_budget(cfg: TrainConfig, train, val) -> dict:
    """What a run's labels were, for its metrics.json and the report: every labelled subject
    counted, validation included, and how the epoch and thresholds were chosen."""
    n_train, n_val = train["subject"].nunique(), val["subject"].nunique()
    out = {"labelled_subjects": int(n_train + n_val), "train_subjects": int(n_train),
           "val_subjects": int(n_val),
           "rule": ("label_subjects" if cfg.label_subjects else
                    f"label_fraction {cfg.label_fraction:g} by {cfg.label_by}"),
           "epoch": "picked on validation" if n_val else "last (no validation subject)",
           "thresholds": ("0.5 (the protocol); tuned on validation reported apart" if n_val
                          else "0.5 (no validation subject to tune on)")}
    return out


def subject_ids(df) -> list[str]:
    return sorted(set(df["subject"].astype(str)))


def check_images(df, source: str, d: Dist) -> None:
    """An error when none of ``df``'s images exists; a warning naming the count when some are
    missing (those frames are skipped, and counted per epoch and at test). A pack's frames are
    in its shards (``pack_file``): those are checked, not the images they were read from."""
    packed = "pack_file" in df.columns
    files = df["pack_file" if packed else "path"]
    found = {f: os.path.isfile(f) for f in files.unique()}
    exists = files.map(found)
    missing = int((~exists).sum())
    what = "frames (their pack shards)" if packed else "images"
    if missing == len(df):
        fix = ("rerun `hiva data pack` into that folder" if packed else
               "the manifest's paths are relative to its folder: move it back beside its "
               "images or rebuild it")
        raise HivaError(f"none of the {len(df)} {what} of {source} exists (e.g. "
                        f"{files.iloc[0]}); {fix}")
    if missing and d.main:
        print(f"warning: {missing} of {len(df)} {what} of {source} are missing (e.g. "
              f"{files[~exists].iloc[0]}); those frames are skipped", flush=True)


def check_run_dir(cfg: TrainConfig, out: Path) -> None:
    import yaml

    old_file = out / RUN_CONFIG
    if not old_file.exists():
        return
    if not wrote_config(old_file, TrainConfig):  # a user's own config.yaml is never replaced
        raise HivaError(f"--out {out} holds a {RUN_CONFIG} that `hiva train` did not write; "
                        "pass a new or empty folder")
    if cfg.resume != "latest":
        if has_trained(out):
            raise HivaError(f"{out} already holds a run; pass --resume latest to continue it, or "
                            "a new --out")
        return
    old = yaml.safe_load(old_file.read_text()) or {}
    new = config_dict(cfg)
    if int(old.get("epochs", cfg.epochs)) > cfg.epochs:
        raise HivaError(f"{out} was set to train {old['epochs']} epochs; --resume latest may "
                        f"train longer, not shorter: pass --epochs {old['epochs']} or more, or a "
                        "new --out")
    diff = sorted(k for k in set(old) | set(new)
                  if k not in RESUME_FREE and old.get(k) != new.get(k))
    if diff:
        more = f" (+{len(diff) - 5} more)" if len(diff) > 5 else ""
        raise HivaError(f"--resume latest with other settings than {old_file} "
                        f"({', '.join(diff[:5])}{more}); use the same settings or a new --out")


def summarise(results: dict, aus) -> dict:
    folds = [results[k] for k in sorted(results)]
    summary = {"aus": list(aus), "folds": {str(r["fold"]): r for r in folds},
               "mean": mean_over_folds([r["test"] for r in folds])}
    tuned = [r["test_tuned"] for r in folds if "test_tuned" in r]
    if len(tuned) == len(folds) and tuned:
        summary["mean_tuned"] = mean_over_folds(tuned)
    inten = [r["intensity"] for r in folds if "intensity" in r]
    if len(inten) == len(folds) and inten:
        summary["mean_intensity"] = intensity_over_folds(inten)
    return summary


def summary_table(summary: dict) -> str:
    cols = {fold_label(k): r["test"] for k, r in summary["folds"].items()}
    if len(cols) > 1:
        cols["mean"] = summary["mean"]
    m = summary["mean"]
    cols["all-pos"] = {"f1": m["baseline_f1"], "mean_f1": m["mean_baseline_f1"]}
    if "mean_tuned" in summary:
        cols["tuned(val)"] = summary["mean_tuned"]
    table = format_table(cols, summary["aus"],
                         "Test F1 ×100 at threshold 0.5 (all-pos = predict every AU present; "
                         "tuned = per-AU thresholds from validation, not the protocol number)")
    if "mean_intensity" not in summary:
        return table
    icols = {fold_label(k): r["intensity"] for k, r in summary["folds"].items()}
    if len(icols) > 1:
        icols["mean"] = summary["mean_intensity"]
    return table + "\n\n" + intensity_table(icols, summary["aus"])
