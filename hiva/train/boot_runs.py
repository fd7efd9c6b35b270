"""Reading finished runs for ``hiva report``'s bootstrap (hiva.train.bootstrap).

Per run and fold, the per-frame test predictions (``fold{k}/test_predictions.parquet``) reduce to
TP/FP/FN counts per test subject and AU at threshold 0.5 (p ≥ 0.5 = present; unknown labels
skipped): an array subjects × AUs × 3, plus the subject × subject pair counts of ROC AUC
(hiva.train.boot_auc): ``FoldCounts``. A run also carries its training seed (for pairing seeds
across groups): given by the caller (a sweep's plan), else the ``seed:`` of its config.yaml, else
read from its name (``arm-s3``, ``arm/seed3``). numpy and pandas only (no torch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.runs import (
    EVALUATED,
    METRICS,
    PREDICTIONS,
    RUN_CONFIG,
    fold_dir,
    is_finished,
    read_metrics,
)
from hiva.train.boot_auc import FoldAUC, fold_auc

THRESHOLD = 0.5


@dataclass(frozen=True)
class FoldCounts:
    """One fold's test counts: ``counts[s, a] = (TP, FP, FN)`` (int64) of subject
    ``subjects[s]`` (sorted) and AU ``aus[a]`` at threshold 0.5; ``auc`` its AUC pair counts."""

    subjects: tuple[str, ...]
    aus: tuple[int, ...]
    counts: np.ndarray
    auc: FoldAUC | None = None


@dataclass
class Run:
    """A finished run folder's test counts per fold number, and its training seed (None:
    unknown)."""

    name: str
    path: Path
    folds: dict[int, FoldCounts]
    seed: int | None = None
    labels: dict | None = None  # its first fold's label_budget (who was labelled), if recorded


def fold_counts(df, source: str = "the predictions") -> FoldCounts:
    """``FoldCounts`` of a predictions table (columns subject, ``p_AUxx``, ``y_AUxx``; y null =
    label unknown), the format ``hiva.train.logs.save_predictions`` writes."""
    import pandas as pd

    aus = sorted(int(c[4:]) for c in df.columns if c.startswith("p_AU"))
    need = ["subject"] + [f"y_AU{a:02d}" for a in aus]
    missing = [c for c in need if c not in df.columns]
    if not aus or missing:
        raise HivaError(f"{source} is not a hiva predictions table (missing "
                        f"{', '.join(missing) or 'p_AU columns'}); rerun `hiva evaluate` to "
                        "rewrite it")
    if not len(df):
        raise HivaError(f"{source} holds no scored test frame; check the run's data and rerun "
                        "`hiva evaluate`")
    codes, subjects = pd.factorize(df["subject"].astype(str), sort=True)
    p = df[[f"p_AU{a:02d}" for a in aus]].to_numpy(np.float64)
    y = df[need[1:]].to_numpy(np.float64, na_value=np.nan)
    pred, pos, neg = p >= THRESHOLD, y == 1, y == 0  # NaN (unknown) is neither 1 nor 0
    frames = np.stack([pred & pos, pred & neg, ~pred & pos], axis=2).reshape(len(df), -1)
    n = len(subjects)
    counts = np.stack([np.bincount(codes, weights=frames[:, j], minlength=n)
                       for j in range(frames.shape[1])], axis=1)
    return FoldCounts(tuple(subjects), tuple(aus),
                      np.rint(counts).astype(np.int64).reshape(n, len(aus), 3),
                      fold_auc(codes, n, p, y))


def read_fold(path: str | Path) -> FoldCounts:
    """``FoldCounts`` of one predictions Parquet file (only the columns needed are read)."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        cols = [c for c in names if c == "subject" or c[:4] in ("p_AU", "y_AU")]
        df = pd.read_parquet(path, columns=cols)
    except (OSError, ValueError) as e:
        raise HivaError(f"{path} cannot be read as Parquet ({e}); rerun `hiva evaluate` to "
                        "rewrite it") from None
    return fold_counts(df, str(path))


SEED_IN_NAME = re.compile(r"(?:^|[-_/])s(?:eed)?(\d+)(?=$|[-_/])")


def run_seed(path: Path, name: str) -> int | None:
    """The ``seed:`` of a run folder's config.yaml, else the ``-s3`` / ``/seed3`` of its name
    (the last one), else None."""
    import yaml

    try:
        cfg = yaml.safe_load((path / RUN_CONFIG).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        cfg = None
    seed = cfg.get("seed") if isinstance(cfg, dict) else None
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    found = SEED_IN_NAME.findall(name)
    return int(found[-1]) if found else None


def load_run(path: str | Path, name: str | None = None, seed: int | None = None) -> Run:
    """The test counts of every fold a finished run folder (one with ``metrics.json``) lists,
    and its seed (``seed`` when given, else ``run_seed``). A fold without
    ``test_predictions.parquet`` falls back to the ``hiva evaluate`` file."""
    path = Path(path)
    name = name or path.name
    mfile = path / METRICS
    if not is_finished(path):
        raise HivaError(f"{path} has no {METRICS} (run {name} is unfinished); finish "
                        f"`hiva train --out {path}` first")
    try:
        folds_meta = read_metrics(path)["folds"]
        ks = sorted(int(k) for k in folds_meta)
    except (ValueError, KeyError, TypeError):
        raise HivaError(f"{mfile} is not a hiva train summary (no folds); rerun `hiva train "
                        f"--out {path}`") from None
    if not ks:
        raise HivaError(f"{mfile} lists no fold; rerun `hiva train --out {path}`")
    folds = {}
    for k in ks:
        file = fold_dir(path, k) / PREDICTIONS
        if not file.is_file() and (file.parent / EVALUATED).is_file():
            file = file.parent / EVALUATED
        if not file.is_file():
            raise HivaError(f"{file} is missing: run {name} was trained "
                            "before hiva saved per-frame test predictions; run `hiva evaluate "
                            f"--checkpoint {path} --fold {k}` (hiva report reads the {EVALUATED} "
                            "it writes)")
        fc = read_fold(file)
        listed = (folds_meta[str(k)].get("subject_ids") or {}).get("test") \
            if isinstance(folds_meta.get(str(k)), dict) else None
        extra = sorted(set(fc.subjects) - set(map(str, listed))) if listed else []
        if extra:
            raise HivaError(f"{file} holds subjects {', '.join(extra[:5])} that are not fold "
                            f"{k}'s test subjects in {mfile} (predictions on other data?); rerun "
                            f"`hiva evaluate --checkpoint {path} --fold {k}` on the run's data")
        folds[k] = fc
    first = folds_meta.get(str(ks[0]))
    labels = first.get("label_budget") if isinstance(first, dict) else None
    return Run(name, path, folds, run_seed(path, name) if seed is None else int(seed),
               labels if isinstance(labels, dict) else None)


def check_paired(runs: list[Run]) -> None:
    """Paired resampling needs every run to test the same folds on the same subjects."""
    first = runs[0]
    for r in runs[1:]:
        if set(r.folds) != set(first.folds):
            raise HivaError(
                f"run {r.name} tested folds {_ks(r)} but {first.name} tested {_ks(first)}: "
                "paired intervals need the same folds in every run; train the missing folds "
                "(hiva train --resume latest --folds ...) or leave the run out")
        for k, fc in first.folds.items():
            a, b = set(fc.subjects), set(r.folds[k].subjects)
            if a != b:
                diff = [f"{s} only in {first.name}" for s in sorted(a - b)[:3]]
                diff += [f"{s} only in {r.name}" for s in sorted(b - a)[:3]]
                raise HivaError(
                    f"fold {k}'s test subjects differ between runs {first.name} and {r.name} "
                    f"({'; '.join(diff)}): paired intervals need runs on the same folds; train "
                    "them with the same --data, --num-folds, --fold-scheme and fold seed")


def _ks(r: Run) -> str:
    return ",".join(map(str, sorted(r.folds)))


def fold_files(run: Run, read) -> dict | None:
    """``{fold: read(file)}`` for every fold of ``run``: its test predictions, or else the file
    ``hiva evaluate`` wrote; None when a fold has neither or ``read`` finds nothing in them
    (``read`` returns None: a run trained before hiva wrote those columns)."""
    out = {}
    for k in run.folds:
        got = None
        for name in (PREDICTIONS, EVALUATED):
            f = fold_dir(run.path, k) / name
            if f.is_file() and (got := read(f)) is not None:
                break
        if got is None:
            return None
        out[k] = got
    return out


def runs_with(groups: dict, read) -> tuple[dict[str, dict], list[str]]:
    """(``{run name: fold_files(run, read)}`` of the groups all of whose runs have them, the
    names of the groups some of whose runs do not); ``groups``: name → runs."""
    per_run: dict[str, dict] = {}
    missing = []
    for g, runs in groups.items():
        got = [fold_files(r, read) for r in runs]
        if any(x is None for x in got):
            missing.append(g)
            continue
        per_run.update((r.name, x) for r, x in zip(runs, got))
    return per_run, missing
