"""ME-GraphAU's list files, read and written: ``<NAME>_<split>_img_path_fold<k>.txt`` +
``<NAME>_<split>_label_fold<k>.txt`` (one relative path / one space-separated 0/1 row per line,
9 = unknown; AU order of the BP4D or DISFA set), and the weight and AU-relation files its list
tools write. Fold k is ME-GraphAU's fold k (``hiva.data.folds``: fold k tests part 4 - k)."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from hiva.data import importing
from hiva.data.folds import BP4D_PARTS, DISFA_PARTS
from hiva.data.importing import ImportReport
from hiva.errors import HivaError
from hiva.facs import AU_SETS, au_column

_LIST_RE = re.compile(r"^(?P<name>.+?)_(?P<split>train|test|val)_img_path_fold(?P<k>\d+)\.txt$")


def import_megraphau(lists: str | Path, images: str | Path, split: str = "test",
                     aus: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, ImportReport]:
    """Read ME-GraphAU list files. The ``test`` lists of folds 1..3 cover every frame once; the
    fold number (ME-GraphAU's) is kept in a ``fold`` column; 9 reads as unknown. DISFA lists get
    ``sequence`` "left" (the left camera), as ``import_disfa`` writes it."""
    lists, images = Path(lists), Path(images)
    importing.need_dir(lists, "ME-GraphAU list", "--lists")
    importing.need_dir(images, "image", "--images")
    report = ImportReport()
    rows = []
    found = sorted(f for f in lists.iterdir() if (m := _LIST_RE.match(f.name))
                   and m.group("split") == split)
    if not found:
        raise HivaError(f"no *_{split}_img_path_fold<k>.txt in {lists}; pass the list folder")
    for f in found:
        m = _LIST_RE.match(f.name)
        name, k = m.group("name"), int(m.group("k"))
        order = aus or AU_SETS.get(name.lower())
        if order is None:
            raise HivaError(f"cannot tell the AU order of {f.name}; pass --aus (e.g. bp4d)")
        lab = lists / f"{name}_{split}_label_fold{k}.txt"
        if not lab.is_file():
            raise HivaError(f"{lab.name} is missing beside {f.name}; copy both list files")
        paths = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
        labels = [ln.split() for ln in lab.read_text().splitlines() if ln.strip()]
        if len(paths) != len(labels):
            raise HivaError(f"{f.name} has {len(paths)} lines but {lab.name} has {len(labels)}; "
                            "the two files must match line by line")
        for n, (rel, lv) in enumerate(zip(paths, labels), start=1):
            try:
                if len(lv) != len(order):
                    raise ValueError(lv)
                ints = [importing.label_int(v) for v in lv]
            except ValueError:
                report.add("label rows with the wrong number of AUs or a non-number",
                           f"{lab.name}:{n}")
                continue
            p = images / rel
            if not p.is_file():
                report.add("listed images not found", f"{f.name}:{n}")
                continue
            parts = Path(rel).parts
            stem = Path(rel).stem
            sequence = "/".join(parts[1:-1]) or ("left" if name.lower() == "disfa" else "")
            row = {"path": str(p.resolve()), "subject": parts[0] if len(parts) > 1 else "",
                   "sequence": sequence, "frame": int(stem) if stem.isdigit() else 0, "fold": k}
            for a, iv in zip(order, ints):
                row[au_column(a)] = iv if iv in (0, 1) else None
                if iv not in (0, 1, importing.UNKNOWN):
                    report.add(importing.R_ODD_VALUE, f"{lab.name}:{n}", kept=True)
            rows.append(row)
    return importing.finish(rows, report, "ME-GraphAU")


def infer_images_root(paths: list[str], subjects: list[str]) -> Path | None:
    """The folder ME-GraphAU calls ``img``: the parent of each path's ``<subject>`` folder when
    that is one folder for every row, else the deepest folder holding every image."""
    roots = set()
    for p, s in zip(paths, subjects):
        parts = Path(p).parent.parts
        idx = [i for i, part in enumerate(parts) if part == s]
        if not idx:
            roots = set()
            break
        roots.add(Path(*parts[: idx[-1]]))
    if len(roots) == 1:
        return roots.pop()
    try:
        return Path(os.path.commonpath([str(Path(p).parent) for p in paths]))
    except ValueError:  # mixed absolute/relative or drives
        return None


def _export_order(df: pd.DataFrame, folds: np.ndarray) -> np.ndarray:
    """Row order of ME-GraphAU's tools: part by part (fold k tests part K + 1 - k), subjects in
    the order of the published part lists (sorted when the subjects are not BP4D's or DISFA's),
    then sequence, then frame."""
    subjects = df["subject"].astype(str).to_numpy()
    present = set(subjects)
    for parts in (BP4D_PARTS, DISFA_PARTS):
        flat = [s for p in sorted(parts) for s in parts[p]]
        if present <= set(flat):
            rank = {s: i for i, s in enumerate(flat)}
            break
    else:
        rank = {s: i for i, s in enumerate(sorted(present))}
    seqs = df["sequence"].astype(str).to_numpy()
    seq_rank = {s: i for i, s in enumerate(sorted(set(seqs)))}
    part = int(folds.max()) + 1 - folds
    keys = (df["frame"].to_numpy(dtype=np.int64), np.array([seq_rank[s] for s in seqs]),
            np.array([rank[s] for s in subjects]), part)
    return np.lexsort(keys)  # the last key sorts first; stable


def _savetxt_int(path: Path, rows: np.ndarray) -> None:
    """``np.savetxt(path, rows, fmt='%d', delimiter=' ')``, as ME-GraphAU writes its lists."""
    path.write_text("".join(" ".join(map(str, r)) + "\n" for r in rows.tolist()))


def export_megraphau(df: pd.DataFrame, out: str | Path, name: str, aus: tuple[int, ...],
                     folds: pd.Series, images_root: str | Path | None = None,
                     relation: bool = True, report: Counter | None = None) -> list[Path]:
    """Write the files ME-GraphAU's list tools write (``tool/<DS>_image_label_process.py``,
    ``<DS>_calculate_AU_class_weights.py``, ``<DS>_deal_AU_relation.py``), per fold k:
    ``<name>_{train,test}_img_path_fold<k>.txt`` (image paths relative to ``images_root``, its
    ``img`` folder; inferred when None), ``<name>_{train,test}_label_fold<k>.txt`` (0/1 per AU,
    unknown = 9 as its BP4D lists keep it), ``<name>_train_weight_fold<k>.txt`` (the tools' name)
    and the same numbers as ``<name>_weight_fold<k>.txt`` (the name its training reads), and
    ``<name>_train_AU_relation_fold<k>.txt`` (stage 2) when ``relation``. Fold k holds the rows
    ``folds == k`` as its test list; rows come in the tools' order (``_export_order``). An AU with
    no positive in a training split gets an infinite/NaN weight, as the tools would write; it is
    counted in ``report``."""
    missing = [au_column(n) for n in aus if au_column(n) not in df.columns]
    if missing:
        have = ",".join(str(int(c[2:])) for c in df.columns if re.fullmatch(r"AU\d+", c))
        raise HivaError(f"the manifest has no {', '.join(missing)} column; pass --aus with AUs "
                        f"it has ({have})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = df["path"].astype(str).tolist()
    subjects = df["subject"].astype(str).tolist()
    root = Path(images_root) if images_root else infer_images_root(paths, subjects)
    root = root.resolve() if root is not None else None

    def rel(p: str) -> str:
        if root is not None:
            try:
                return Path(p).resolve().relative_to(root).as_posix()
            except ValueError:
                pass
        return p  # absolute: ME-GraphAU's os.path.join(img, path) keeps an absolute path

    fold = folds.to_numpy(dtype=np.int64)
    order = _export_order(df, fold)
    lab = (df[[au_column(n) for n in aus]].astype("Float64").fillna(importing.UNKNOWN)
           .astype(int).to_numpy()[order])
    rels = [rel(paths[i]) for i in order]
    if report is not None and (lab == importing.UNKNOWN).any():
        report["unknown labels written as 9, as ME-GraphAU's BP4D lists keep them (its test-time "
               "statistics() accepts only 0/1)"] += int((lab == importing.UNKNOWN).sum())
    fold = fold[order]
    written = []
    for k in sorted(set(fold.tolist())):
        for split, sel in (("train", fold != k), ("test", fold == k)):
            idx = np.flatnonzero(sel)
            pf = out / f"{name}_{split}_img_path_fold{k}.txt"
            lf = out / f"{name}_{split}_label_fold{k}.txt"
            pf.write_text("".join(rels[i] + "\n" for i in idx))
            _savetxt_int(lf, lab[idx])
            written += [pf, lf]
        train = lab[fold != k]
        # calculate_AU_class_weights: occurrence = label > 0 (a 9 counts), weight ∝ 1 / rate
        rate = np.zeros((1, train.shape[1]))
        for i in range(train.shape[1]):
            rate[0, i] = np.count_nonzero(train[:, i] > 0) / float(train.shape[0] or 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = 1.0 / rate
            weight = weight / weight.sum() * weight.shape[1]
        for i in np.flatnonzero(rate[0] == 0):
            if report is not None:
                report[f"fold {k}: AU{aus[i]} has no positive training frame (its weight in "
                       f"{name}_weight_fold{k}.txt is not finite)"] += 1
        text = "\t".join(f"{w:f}" for w in weight[0]) + "\n"  # savetxt fmt="%f"
        for wf in (out / f"{name}_train_weight_fold{k}.txt", out / f"{name}_weight_fold{k}.txt"):
            wf.write_text(text)
            written.append(wf)
        if relation:  # deal_AU_relation: column j*N + m holds 2 * label_j + label_m
            rf = out / f"{name}_train_AU_relation_fold{k}.txt"
            n_aus = train.shape[1]
            pairs = 2 * train[:, :, None] + train[:, None, :]
            _savetxt_int(rf, pairs.reshape(len(train), n_aus * n_aus))
            written.append(rf)
    return written
