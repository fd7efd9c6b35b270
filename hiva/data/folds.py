"""Subject-exclusive folds and label statistics.

``BP4D_PARTS`` / ``DISFA_PARTS`` are the three subject groups of the standard 3-fold protocol used
by JAA-Net (Shao et al., ECCV 2018) and ME-GraphAU (Luo et al., IJCAI 2022), in the order of the
ME-GraphAU README ("BP4D_Sequence_split" / "DISFA_Sequence_split"). Fold numbering follows
ME-GraphAU's list tools, which the papers' per-fold tables use: **fold k tests part 4 − k** (fold
1 tests part 3, fold 2 part 2, fold 3 part 1) and trains on the other two parts.
``BP4D_FOLDS[k]`` / ``DISFA_FOLDS[k]`` are the TEST subjects of fold k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiva.errors import HivaError
from hiva.facs import au_column

BP4D_PARTS: dict[int, list[str]] = {
    1: ["F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016",
        "M014", "F023", "M008"],
    2: ["M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020",
        "F011", "M013", "M005"],
    3: ["F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017",
        "M015", "F014"],
}
DISFA_PARTS: dict[int, list[str]] = {
    1: ["SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"],
    2: ["SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"],
    3: ["SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"],
}
TEST_PART = {1: 3, 2: 2, 3: 1}  # ME-GraphAU: fold k tests part 4 - k
BP4D_FOLDS: dict[int, list[str]] = {k: BP4D_PARTS[p] for k, p in TEST_PART.items()}
DISFA_FOLDS: dict[int, list[str]] = {k: DISFA_PARTS[p] for k, p in TEST_PART.items()}
SCHEMES = ("auto", "manifest", "bp4d", "disfa", "kfold")
_STANDARD = {"bp4d": BP4D_FOLDS, "disfa": DISFA_FOLDS}


def _fixed(df: pd.DataFrame, table: dict[int, list[str]], name: str) -> pd.Series:
    lookup = {s: k for k, subs in table.items() for s in subs}
    folds = df["subject"].astype(str).map(lookup)
    unknown = sorted(set(df["subject"][folds.isna()].astype(str)))
    if unknown:
        raise HivaError(
            f"subject(s) {', '.join(unknown[:5])} are not in the standard {name} folds; check the "
            f"subject ids (e.g. {table[1][0]}) or use --scheme kfold"
        )
    return folds.astype("int64").rename("fold")


def standard_dataset(df: pd.DataFrame) -> str | None:
    """``"bp4d"`` / ``"disfa"`` when every subject of ``df`` is one of that dataset's standard
    subjects, else None."""
    subjects = set(df["subject"].astype(str))
    for name, table in _STANDARD.items():
        if subjects and subjects <= {s for subs in table.values() for s in subs}:
            return name
    return None


def resolve_scheme(df: pd.DataFrame, scheme: str = "auto") -> str:
    """The concrete scheme for ``scheme``: ``auto`` picks ``manifest`` when ``df`` has a complete
    ``fold`` column (an importer wrote it), else ``bp4d``/``disfa`` when every subject is one of
    that dataset's, else ``kfold``."""
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise HivaError(f"unknown fold scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if scheme != "auto":
        return scheme
    if "fold" in df.columns and len(df) and df["fold"].notna().all():
        return "manifest"
    return standard_dataset(df) or "kfold"


def describe_scheme(scheme: str, k: int = 3, seed: int = 0) -> str:
    """One line saying what a concrete scheme means, for logs."""
    if scheme in _STANDARD:
        return (f"{scheme} (the standard {scheme.upper()} parts; ME-GraphAU's numbering: fold 1 "
                "tests part 3, fold 2 part 2, fold 3 part 1)")
    if scheme == "manifest":
        return "manifest (the manifest's fold column; fold k = the rows fold k tests)"
    return f"kfold ({k} subject-exclusive folds, subjects shuffled with seed {seed})"


def _manifest_folds(df: pd.DataFrame) -> pd.Series:
    if "fold" not in df.columns or df["fold"].isna().any():
        raise HivaError("fold scheme 'manifest' needs a fold column with a number on every row; "
                        "use the fold scheme auto, kfold, bp4d or disfa")
    folds = pd.to_numeric(df["fold"], errors="coerce")
    if folds.isna().any() or (folds < 1).any() or (folds % 1 != 0).any():
        bad = df["fold"][folds.isna() | (folds < 1) | (folds % 1 != 0)].iloc[0]
        raise HivaError(f"the manifest's fold column holds {bad!r}; folds are integers from 1")
    per_subject = folds.groupby(df["subject"].astype(str)).nunique()
    if (per_subject > 1).any():
        s = per_subject[per_subject > 1].index[0]
        raise HivaError(f"subject {s} lies in several folds of the manifest's fold column; "
                        "folds must be subject-exclusive (or use the fold scheme kfold)")
    return folds.astype("int64").rename("fold")


def assign_folds(df: pd.DataFrame, scheme: str = "kfold", k: int = 3, seed: int = 0) -> pd.Series:
    """Fold number 1..k for each row (the rows fold k TESTS on); every subject lies in one fold.

    ``bp4d``/``disfa`` use the published subject lists numbered as ME-GraphAU numbers them;
    ``manifest`` reads the manifest's ``fold`` column; ``auto`` picks one (``resolve_scheme``);
    ``kfold`` shuffles the subjects with ``seed`` and deals them round-robin so folds differ by
    at most one subject.
    """
    scheme = resolve_scheme(df, scheme)
    if scheme == "manifest":
        return _manifest_folds(df)
    if scheme == "bp4d":
        return _fixed(df, BP4D_FOLDS, "BP4D")
    if scheme == "disfa":
        return _fixed(df, DISFA_FOLDS, "DISFA")
    subjects = sorted(set(df["subject"].astype(str)))
    if k < 2 or len(subjects) < k:
        raise HivaError(
            f"cannot make {k} subject-exclusive folds from {len(subjects)} subject(s); "
            "use k >= 2 and at most one fold per subject"
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    lookup = {subjects[j]: (i % k) + 1 for i, j in enumerate(order)}
    return df["subject"].astype(str).map(lookup).astype("int64").rename("fold")


def split_train_val(
    df_train: pd.DataFrame, val_fraction: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out about ``val_fraction`` of the subjects (at least one) as a validation set."""
    if not 0.0 <= val_fraction < 1.0:
        raise HivaError(f"val_fraction must be in [0, 1), got {val_fraction}")
    subjects = sorted(set(df_train["subject"].astype(str)))
    if val_fraction == 0.0:
        return df_train, df_train.iloc[:0]
    if len(subjects) < 2:
        raise HivaError("a validation split needs at least 2 training subjects; set val_fraction 0")
    n_val = min(len(subjects) - 1, max(1, round(len(subjects) * val_fraction)))
    rng = np.random.default_rng(seed)
    val = set(rng.choice(subjects, size=n_val, replace=False).tolist())
    is_val = df_train["subject"].astype(str).isin(val)
    return df_train[~is_val], df_train[is_val]


LABEL_UNITS = ("subject", "segment")


def limit_labels(df_train: pd.DataFrame, fraction: float, by: str = "subject",
                 seed: int = 0) -> pd.DataFrame:
    """The labelled share of a training set for limited-label runs, drawn as real annotation
    budgets are spent, never as random frames (neighbouring video frames are near duplicates, so
    10% of the frames keeps almost all of the information):

    - ``subject``: about ``fraction`` of the subjects (at least one), all of their frames;
    - ``segment``: in every (subject, sequence), one contiguous run of about ``fraction`` of its
      frames (at least one) at a seeded offset.

    The draw depends only on ``seed`` and the data, never on the model config, so every arm of a
    comparison trains on the same frames at a given seed."""
    if by not in LABEL_UNITS:
        raise HivaError(f"label_by {by!r}: use {' or '.join(LABEL_UNITS)}")
    if fraction >= 1.0 or len(df_train) == 0:
        return df_train
    rng = np.random.default_rng([seed, 104_723])
    if by == "subject":
        subjects = sorted(set(df_train["subject"].astype(str)))
        n_keep = max(1, round(len(subjects) * fraction))
        keep = set(rng.choice(subjects, size=n_keep, replace=False).tolist())
        return df_train[df_train["subject"].astype(str).isin(keep)]
    keys = ["subject", "sequence"] if "sequence" in df_train else ["subject"]
    order = df_train.sort_values([*keys, "frame"] if "frame" in df_train else keys, kind="stable")
    kept = []
    for _, g in order.groupby(keys, sort=True):
        n = max(1, round(len(g) * fraction))
        start = int(rng.integers(0, len(g) - n + 1))
        kept.append(g.index[start:start + n])
    return df_train.loc[df_train.index.isin(np.concatenate(kept))]


def occurrence_rates(df: pd.DataFrame, aus) -> np.ndarray:
    """Fraction of positives per AU among rows whose label is known (NaN when none is known)."""
    out = np.full(len(aus), np.nan, dtype=np.float64)
    for i, n in enumerate(aus):
        col = df[au_column(n)].astype("Float64")
        known = col.dropna()
        if len(known):
            out[i] = float(known.sum()) / len(known)
    return out
