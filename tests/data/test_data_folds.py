from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiva.data.folds import BP4D_FOLDS, DISFA_FOLDS, assign_folds, occurrence_rates, split_train_val
from hiva.errors import HivaError


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


def test_bp4d_disfa_schemes():
    df = _df(["F001", "M011", "F007"])
    assert list(assign_folds(df, "bp4d").unique()) == [1, 2, 3]
    df = _df(["SN002", "SN013", "SN003"])
    assert list(assign_folds(df, "disfa").unique()) == [1, 2, 3]
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
