"""`hiva data export-megraphau` writes, file for file, what ME-GraphAU's list tools write
(CVI-SZU/ME-GraphAU, tool/BP4D_image_label_process.py, tool/DISFA_image_label_process.py,
tool/*_calculate_AU_class_weights.py, tool/*_deal_AU_relation.py) from the same raw tree.

The expected lists are computed here by a plain re-implementation of those scripts: the parts are
written out literally as the tools list them, fold 1 tests part 3, fold 2 part 2, fold 3 part 1;
fold k trains on the other two parts in part order; BP4D rows: subject in part order, tasks T1..T8,
frames in CSV order, path <subject>/<task>/<frame>.jpg, the raw 0/1/9 of the 12 AUs; DISFA rows:
subject in part order, one row per line of <subject>_au1.txt, path <subject>/<i>.png (i from 0),
1 when the intensity is >= 2 (a missing AU file gives 0); weights: occurrence = label > 0 over the
train list, 1/rate normalised to sum to the number of AUs, "%f" joined by tabs, written as
<DS>_train_weight_fold<k>.txt by the tools (and read as <DS>_weight_fold<k>.txt by their
training, so hiva writes both); relation: column j*N+m = 2*label_j + label_m.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from hiva.cli import app
from hiva.data.manifest import read_manifest

BP4D_PART = {
    1: ["F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016",
        "M014", "F023", "M008"],
    2: ["M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020",
        "F011", "M013", "M005"],
    3: ["F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017",
        "M015", "F014"],
}
DISFA_PART = {
    1: ["SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"],
    2: ["SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"],
    3: ["SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"],
}
TEST_PART = {1: 3, 2: 2, 3: 1}
TRAIN_PARTS = {1: (1, 2), 2: (1, 3), 3: (2, 3)}
BP4D_AUS = ["1", "2", "4", "6", "7", "10", "12", "14", "15", "17", "23", "24"]
DISFA_AUS = [1, 2, 4, 6, 9, 12, 25, 26]
TASKS = [f"T{i}" for i in range(1, 9)]


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (90, 90, 90)).save(buf, fmt)
    return buf.getvalue()


def make_bp4d_tree(root: Path) -> Path:
    """All 41 subjects, two tasks each (not T1/T2 only), 2-3 frames per task, some crossing
    99 → 100 (CSV order is not string order). AU_OCC CSVs with header 0..39: the 12 BP4D AUs as
    0/1 with a few 9s, AU5 coded 0/1 (an AU outside the BP4D set), every other column 9."""
    rng = np.random.default_rng(11)
    jpg = _image_bytes("JPEG")
    occ = root / "AUCoding" / "AU_OCC"
    occ.mkdir(parents=True)
    subjects = sorted(s for p in BP4D_PART.values() for s in p)
    for si, s in enumerate(subjects):
        for t in (TASKS[si % 8], TASKS[(si + 5) % 8]):
            start = 97 + si % 4
            lines = [",".join(str(c) for c in range(40))]
            for fr in range(start, start + 2 + si % 2):
                d = root / "img" / s / t
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{fr}.jpg").write_bytes(jpg)
                row = [9] * 40
                row[0] = fr
                for au in BP4D_AUS:
                    row[int(au)] = int(rng.random() < 0.4) if rng.random() > 0.06 else 9
                row[5] = int(rng.random() < 0.3)
                lines.append(",".join(map(str, row)))
            (occ / f"{s}_{t}.csv").write_text("\n".join(lines) + "\n")
    return root


def make_disfa_tree(root: Path) -> Path:
    """All 27 subjects, 3-5 frames each, the 12 DISFA AU files (intensity 0-5, frames from 1)."""
    rng = np.random.default_rng(7)
    png = _image_bytes("PNG")
    subjects = sorted(s for p in DISFA_PART.values() for s in p)
    for si, s in enumerate(subjects):
        n = 3 + si % 3
        d = root / "img" / s
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{i}.png").write_bytes(png)
        lab = root / "ActionUnit_Labels" / s
        lab.mkdir(parents=True)
        for au in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26):
            vals = rng.integers(0, 6, n)
            (lab / f"{s}_au{au}.txt").write_text("".join(f"{f + 1},{v}\n"
                                                         for f, v in enumerate(vals)))
    return root


def _savetxt(arr, fmt: str, delimiter: str = " ") -> str:
    buf = io.StringIO()
    np.savetxt(buf, arr, fmt=fmt, delimiter=delimiter)
    return buf.getvalue()


def _loadtxt(text: str) -> np.ndarray:
    return np.loadtxt(io.StringIO(text))


def _lists_like_the_tools(name: str, parts: dict[int, tuple[list[str], np.ndarray]]) -> dict:
    """File name → text, for the image/label lists of each fold plus weights and relations."""
    files = {}
    for k in (1, 2, 3):
        paths, labels = parts[TEST_PART[k]]
        files[f"{name}_test_img_path_fold{k}.txt"] = "".join(p + "\n" for p in paths)
        files[f"{name}_test_label_fold{k}.txt"] = _savetxt(labels, "%d")
        a, b = TRAIN_PARTS[k]
        files[f"{name}_train_img_path_fold{k}.txt"] = "".join(
            p + "\n" for p in parts[a][0] + parts[b][0])
        train_text = _savetxt(np.concatenate([parts[a][1], parts[b][1]]), "%d")
        files[f"{name}_train_label_fold{k}.txt"] = train_text
        occur = _loadtxt(train_text)
        rate = np.zeros((1, occur.shape[1]))
        for i in range(occur.shape[1]):
            rate[0, i] = sum(occur[:, i] > 0) / float(occur.shape[0])
        w = 1.0 / rate
        w = w / w.sum() * w.shape[1]
        files[f"{name}_train_weight_fold{k}.txt"] = _savetxt(w, "%f", "\t")
        files[f"{name}_weight_fold{k}.txt"] = files[f"{name}_train_weight_fold{k}.txt"]
        n = occur.shape[1]
        rel = np.zeros((occur.shape[0], n * n))
        for j in range(n):
            for m in range(n):
                rel[:, j * n + m] = 2 * occur[:, j] + occur[:, m]
        files[f"{name}_train_AU_relation_fold{k}.txt"] = _savetxt(rel, "%d")
    return files


def expected_bp4d(root: Path) -> dict:
    parts = {}
    for p, subjects in BP4D_PART.items():
        paths, labels = [], []
        for s in subjects:
            for t in TASKS:
                f = root / "AUCoding" / "AU_OCC" / f"{s}_{t}.csv"
                if not f.exists():  # the tools expect T1..T8 for everyone; the tree has two
                    continue
                tab = pd.read_csv(f, header=0, index_col=0, usecols=["0"] + BP4D_AUS)
                paths += [f"{s}/{t}/{fr}.jpg" for fr in tab.index]
                labels.append(tab.to_numpy())
        parts[p] = (paths, np.concatenate(labels))
    return _lists_like_the_tools("BP4D", parts)


def expected_disfa(root: Path) -> dict:
    parts = {}
    for p, subjects in DISFA_PART.items():
        paths, labels = [], []
        for s in subjects:
            lab = root / "ActionUnit_Labels" / s
            n = len((lab / f"{s}_au1.txt").read_text().splitlines())
            arr = np.zeros((n, len(DISFA_AUS)), dtype=int)
            for j, au in enumerate(DISFA_AUS):
                f = lab / f"{s}_au{au}.txt"
                if not f.is_file():
                    continue
                for t, line in enumerate(csv.reader(f.read_text().splitlines())):
                    arr[t, j] = 1 if int(line[1]) >= 2 else 0
            paths += [f"{s}/{i}.png" for i in range(n)]
            labels.append(arr)
        parts[p] = (paths, np.concatenate(labels))
    return _lists_like_the_tools("DISFA", parts)


def _run(*args: str) -> str:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def _files(folder: Path) -> dict:
    return {f.name: f.read_text() for f in sorted(folder.iterdir())}


def _assert_same_files(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs"


def _common(df: pd.DataFrame, aus) -> pd.DataFrame:
    cols = ["path", "subject", "sequence", "frame"] + [f"AU{a:02d}" for a in aus]
    return df[cols].sort_values("path").reset_index(drop=True)


@pytest.fixture(scope="module")
def bp4d_tree(tmp_path_factory) -> Path:
    return make_bp4d_tree(tmp_path_factory.mktemp("raw") / "BP4D")


@pytest.fixture(scope="module")
def disfa_tree(tmp_path_factory) -> Path:
    return make_disfa_tree(tmp_path_factory.mktemp("raw") / "DISFA")


def test_bp4d_lists_equal_the_tools_lists(bp4d_tree, tmp_path):
    want = expected_bp4d(bp4d_tree)
    assert any(" 9" in line or line.startswith("9")
               for line in want["BP4D_test_label_fold1.txt"].splitlines())  # 9s are kept
    _run("data", "import", "bp4d", "--root", bp4d_tree, "--out", tmp_path / "m.parquet")
    m1 = read_manifest(tmp_path / "m.parquet")
    assert "AU05" in m1  # coded outside the BP4D set: the lists still hold the 12 BP4D AUs
    out = _run("data", "export-megraphau", tmp_path / "m.parquet", "--out", tmp_path / "list")
    assert "folds: bp4d" in out
    _assert_same_files(_files(tmp_path / "list"), want)

    # round trip: the lists read back give the same frames, labels (9 → unknown) and the folds
    # the BP4D scheme gives; exported again they are the same files
    _run("data", "import", "megraphau", "--lists", tmp_path / "list", "--images",
         bp4d_tree / "img", "--out", tmp_path / "m2.parquet")
    m2 = read_manifest(tmp_path / "m2.parquet")
    aus = [int(a) for a in BP4D_AUS]
    pd.testing.assert_frame_equal(_common(m2, aus), _common(m1, aus))
    from hiva.data.folds import assign_folds

    by_path = dict(zip(m1["path"], assign_folds(m1, "bp4d")))
    assert m2["fold"].tolist() == [by_path[p] for p in m2["path"]]
    out = _run("data", "export-megraphau", tmp_path / "m2.parquet", "--out", tmp_path / "list2")
    assert "folds: manifest" in out
    _assert_same_files(_files(tmp_path / "list2"), want)


def test_disfa_lists_equal_the_tools_lists_and_round_trip(disfa_tree, tmp_path):
    want = expected_disfa(disfa_tree)
    _run("data", "import", "disfa", "--root", disfa_tree, "--out", tmp_path / "m.parquet")
    out = _run("data", "export-megraphau", tmp_path / "m.parquet", "--out", tmp_path / "list")
    assert "folds: disfa" in out and "DISFA" in out
    _assert_same_files(_files(tmp_path / "list"), want)

    _run("data", "import", "megraphau", "--lists", tmp_path / "list", "--images",
         disfa_tree / "img", "--out", tmp_path / "m2.parquet")
    m1, m2 = read_manifest(tmp_path / "m.parquet"), read_manifest(tmp_path / "m2.parquet")
    assert set(m2["sequence"]) == {"left"}
    pd.testing.assert_frame_equal(_common(m2, DISFA_AUS), _common(m1, DISFA_AUS))
    _run("data", "export-megraphau", tmp_path / "m2.parquet", "--out", tmp_path / "list2")
    _assert_same_files(_files(tmp_path / "list2"), want)
    # and once more: import → export → import loses nothing
    _run("data", "import", "megraphau", "--lists", tmp_path / "list2", "--images",
         disfa_tree / "img", "--out", tmp_path / "m3.parquet")
    m3 = read_manifest(tmp_path / "m3.parquet")
    pd.testing.assert_frame_equal(m3.drop(columns="path"), m2.drop(columns="path"))
    assert m3["path"].tolist() == m2["path"].tolist()


def test_folds_cli_says_which_scheme(disfa_tree, tmp_path):
    _run("data", "import", "disfa", "--root", disfa_tree, "--out", tmp_path / "m.parquet")
    out = _run("data", "folds", tmp_path / "m.parquet")
    assert out.splitlines()[0].startswith("scheme: disfa")
    lines = [ln for ln in out.splitlines() if ln.startswith("fold ")]
    frames = {k: sum(len(list((disfa_tree / "img" / s).iterdir()))
                     for s in DISFA_PART[TEST_PART[k]]) for k in (1, 2, 3)}
    assert [ln.split(";")[0] for ln in lines] == [
        f"fold {k}: test 9 subjects / {frames[k]} frames" for k in (1, 2, 3)]
