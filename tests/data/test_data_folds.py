from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiva.data.folds import (
    BP4D_FOLDS,
    DISFA_FOLDS,
    assign_folds,
    occurrence_rates,
    resolve_scheme,
    split_train_val,
)
from hiva.errors import HivaError

# The TEST subjects of each fold, written out from ME-GraphAU's list tools
# (tool/BP4D_image_label_process.py, tool/DISFA_image_label_process.py): fold 1 tests part 3,
# fold 2 part 2, fold 3 part 1; the order is the tools' (it is the order of the exported lists).
BP4D_TEST = {
    1: ["F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017",
        "M015", "F014"],
    2: ["M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020",
        "F011", "M013", "M005"],
    3: ["F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016",
        "M014", "F023", "M008"],
}
DISFA_TEST = {
    1: ["SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"],
    2: ["SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"],
    3: ["SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"],
}


def _df(subjects, per=3):
    rows = [{"subject": s, "AU01": (i % 2), "AU02": None if i == 0 else 1}
            for s in subjects for i in range(per)]
    df = pd.DataFrame(rows)
    df["AU01"] = df["AU01"].astype("Int8")
    df["AU02"] = df["AU02"].astype("Int8")
    return df


def test_standard_lists_are_disjoint_and_complete():
    for table, n in ((BP4D_FOLDS, 41), (DISFA_FOLDS, 27)):
        subs = [s for v in table.values() for s in v]
        assert len(subs) == len(set(subs)) == n


def test_fold_subject_lists_are_pinned():
    assert BP4D_FOLDS == BP4D_TEST
    assert DISFA_FOLDS == DISFA_TEST
    for table, scheme in ((BP4D_TEST, "bp4d"), (DISFA_TEST, "disfa")):
        subjects = [s for k in (1, 2, 3) for s in table[k]]
        folds = assign_folds(_df(subjects, per=1), scheme)
        assert folds.tolist() == [k for k in (1, 2, 3) for _ in table[k]]


def test_bp4d_disfa_schemes():
    df = _df(["F001", "M011", "F007"])  # parts 1, 2, 3 → folds 3, 2, 1
    assert list(assign_folds(df, "bp4d").unique()) == [3, 2, 1]
    df = _df(["SN002", "SN013", "SN003"])
    assert list(assign_folds(df, "disfa").unique()) == [3, 2, 1]
    with pytest.raises(HivaError, match="kfold"):
        assign_folds(_df(["F001", "X9"]), "bp4d")


def test_kfold_subject_exclusive_and_deterministic():
    df = _df([f"s{i}" for i in range(10)])
    f = assign_folds(df, "kfold", k=3, seed=1)
    assert sorted(f.unique()) == [1, 2, 3]
    assert (df.groupby("subject").apply(lambda g: f[g.index].nunique()) == 1).all()
    counts = df.assign(f=f).groupby("f")["subject"].nunique()
    assert counts.max() - counts.min() <= 1
    assert f.equals(assign_folds(df, "kfold", k=3, seed=1))
    with pytest.raises(HivaError):
        assign_folds(_df(["a", "b"]), "kfold", k=3)


def test_split_train_val_by_subject():
    df = _df([f"s{i}" for i in range(10)])
    tr, va = split_train_val(df, 0.2, seed=0)
    assert va["subject"].nunique() == 2
    assert not set(tr["subject"]) & set(va["subject"])
    assert len(tr) + len(va) == len(df)


def test_occurrence_rates_ignore_unknowns():
    df = _df(["a", "b"], per=4)
    r = occurrence_rates(df, (1, 2))
    assert r[0] == pytest.approx(0.5)
    assert r[1] == pytest.approx(1.0)  # the nulls are not counted as negatives
    assert np.isnan(occurrence_rates(df.assign(AU01=pd.array([None] * 8, "Int8")), (1,))[0])


def test_resolve_scheme_auto():
    bp4d, disfa, other = _df(["F001", "M011"]), _df(["SN002", "SN013"]), _df(["F001", "x"])
    assert resolve_scheme(bp4d) == "bp4d"
    assert resolve_scheme(disfa) == "disfa"
    assert resolve_scheme(other) == "kfold"
    assert resolve_scheme(bp4d, "KFold") == "kfold"
    # a complete fold column wins (an importer wrote it), numbered as written
    with_fold = bp4d.assign(fold=[2] * 3 + [1] * 3)
    assert resolve_scheme(with_fold) == "manifest"
    assert assign_folds(with_fold, "auto").tolist() == [2] * 3 + [1] * 3
    partial = bp4d.assign(fold=[2, 2, 2, 1, 1, None])
    assert resolve_scheme(partial) == "bp4d"
    with pytest.raises(HivaError, match="fold column"):
        assign_folds(partial, "manifest")
    with pytest.raises(HivaError, match="several folds"):
        assign_folds(bp4d.assign(fold=[1, 2, 1, 1, 1, 1]), "manifest")
    with pytest.raises(HivaError, match="unknown fold scheme"):
        resolve_scheme(bp4d, "random")
