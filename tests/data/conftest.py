"""Fixtures in the real raw formats, with tiny images written at test time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _img(path: Path, value: int = 128, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size, size, 3), value, np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def bp4d_root(tmp_path: Path) -> Path:
    """Two subjects; F001/T1 frames 10-12 (frame 13 labelled but has no image), M001/T2 frame 5.
    AU_OCC columns 0 (frame), 1, 2, 4, 12, 99 (99 is not a FACS AU we know: ignored); AU 2 is
    9 (unknown) everywhere in M001."""
    root = tmp_path / "BP4D"
    for fr in (10, 11, 12):
        _img(root / "img" / "F001" / "T1" / f"{fr}.jpg")
    _img(root / "img" / "M001" / "T2" / "5.jpg")
    occ = root / "AUCoding" / "AU_OCC"
    occ.mkdir(parents=True)
    (occ / "F001_T1.csv").write_text(
        "0,1,2,4,12,99\n10,1,0,9,1,0\n11,0,0,1,9,0\n12,9,1,0,0,1\n13,1,1,1,1,1\n")
    (occ / "M001_T2.csv").write_text("0,1,2,4,12,99\n5,0,9,0,1,0\n")
    return root


@pytest.fixture
def disfa_root(tmp_path: Path) -> Path:
    """SN001 with images 0..2 and labels for frames 1..4 (frame 4 has no image);
    SN002 with image 0 and AU 1 labelled but AU 12 missing for its frame."""
    root = tmp_path / "DISFA"
    for i in range(3):
        _img(root / "img" / "SN001" / f"{i}.png", 50 * i)
    _img(root / "img" / "SN002" / "0.png")
    lab = root / "ActionUnit_Labels"
    (lab / "SN001").mkdir(parents=True)
    (lab / "SN001" / "SN001_au1.txt").write_text("1,0\n2,1\n3,2\n4,5\n")
    (lab / "SN001" / "SN001_au12.txt").write_text("1,3\n2,2\n3,0\n4,0\n")
    (lab / "SN002").mkdir(parents=True)
    (lab / "SN002" / "SN002_au1.txt").write_text("1,4\n")
    (lab / "SN002" / "SN002_au12.txt").write_text("2,1\n")
    return root


@pytest.fixture
def megraphau_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """ME-GraphAU DISFA test lists for folds 1 and 2 (8 AUs each row; SN003 is in part 3, which
    ME-GraphAU's fold 1 tests; SN013 in part 2, fold 2); one listed image absent."""
    images = tmp_path / "imgs"
    lists = tmp_path / "list"
    lists.mkdir()
    for rel in ("SN003/0.png", "SN003/1.png", "SN013/7.png"):
        _img(images / rel)
    (lists / "DISFA_test_img_path_fold1.txt").write_text("SN003/0.png\nSN003/1.png\n")
    (lists / "DISFA_test_label_fold1.txt").write_text("1 0 0 0 0 1 0 0\n0 1 0 0 0 0 1 1\n")
    (lists / "DISFA_test_img_path_fold2.txt").write_text("SN013/7.png\nSN013/8.png\n")
    (lists / "DISFA_test_label_fold2.txt").write_text("0 0 1 0 1 0 0 0\n1 1 1 1 1 1 1 1\n")
    (lists / "DISFA_train_img_path_fold1.txt").write_text("SN013/7.png\n")
    (lists / "DISFA_train_label_fold1.txt").write_text("0 0 1 0 1 0 0 0\n")
    return lists, images
