"""Importers from the raw formats of BP4D, DISFA, ME-GraphAU list files and plain CSV into a
manifest DataFrame (see hiva.data.manifest). Each returns ``(df, report)`` where ``report``
counts what was skipped and why; nothing is dropped silently.

- BP4D: ``img/<subject>/<task>/<frame>.jpg`` and ``AUCoding/AU_OCC/<subject>_<task>.csv``
  (header ``0,1,2,...``: column 0 the frame number, column k AU k; 0/1, 9 = unknown).
- DISFA: ``img/<subject>/<i>.png`` (left camera, i from 0; decoded from
  ``Videos_LeftCamera/LeftVideo<subject>_comp.avi`` when only the videos are there) and
  ``ActionUnit_Labels/<subject>/<subject>_au<k>.txt`` (``frame,intensity``, frames from 1).
- ME-GraphAU: ``<NAME>_<split>_img_path_fold<k>.txt`` + ``<NAME>_<split>_label_fold<k>.txt``
  (one relative path / one space-separated 0/1 row per line; AU order of the BP4D or DISFA set).
- CSV: a ``path`` column and AU columns (``AU1``/``AU01``/``au12``), optional subject,
  sequence and frame columns.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from hiva.errors import HivaError
from hiva.facs import AU_SETS, AUS, au_column

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def _need_dir(p: Path, what: str, flag: str) -> Path:
    if not p.is_dir():
        raise HivaError(f"{what} folder {p} does not exist; pass the right {flag}")
    return p


def _frames(folder: Path) -> dict[int, Path]:
    """Images in ``folder`` keyed by the integer in their file name (``0042.jpg`` → 42)."""
    out = {}
    for f in folder.iterdir():
        if f.suffix.lower() in IMAGE_EXTS and f.stem.isdigit():
            out[int(f.stem)] = f
    return out


def import_bp4d(root: str | Path, images: str | Path | None = None,
                labels: str | Path | None = None) -> tuple[pd.DataFrame, Counter]:
    root = Path(root)
    img_dir = _need_dir(Path(images) if images else root / "img", "BP4D image", "--images")
    lab_dir = _need_dir(Path(labels) if labels else root / "AUCoding" / "AU_OCC",
                        "BP4D AU_OCC label", "--labels")
    report: Counter = Counter()
    rows = []
    csvs = sorted(lab_dir.glob("*.csv"))
    if not csvs:
        raise HivaError(f"no <subject>_<task>.csv files in {lab_dir}; pass the AU_OCC folder")
    for f in csvs:
        if "_" not in f.stem:
            report["label files with no <subject>_<task> name"] += 1
            continue
        subject, task = f.stem.split("_", 1)
        tab = pd.read_csv(f)
        tab.columns = [str(c).strip() for c in tab.columns]
        au_cols = [c for c in tab.columns[1:] if c.isdigit() and int(c) in AUS]
        frames = _frames(img_dir / subject / task) if (img_dir / subject / task).is_dir() else {}
        for _, r in tab.iterrows():
            fr = int(r.iloc[0])
            if fr not in frames:
                report["labelled frames with no image"] += 1
                continue
            row = {"path": str(frames[fr].resolve()), "subject": subject, "sequence": task,
                   "frame": fr}
            for c in au_cols:
                v = int(r[c])
                row[au_column(int(c))] = v if v in (0, 1) else None  # 9 = unknown
            rows.append(row)
    return _finish(rows, report, "BP4D")


def decode_video(video: str | Path, folder: str | Path) -> int:
    """Decode every frame of ``video`` to ``folder/<i>.png`` (i from 0) with PyAV; frames already
    on disk are kept, so a killed run resumes. Returns the number of frames."""
    import av

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with av.open(str(video)) as box:
        for i, frame in enumerate(box.decode(video=0)):
            dst = folder / f"{i}.png"
            if not dst.exists():
                tmp = folder / f".{i}.tmp.png"
                frame.to_image().save(tmp)
                tmp.replace(dst)
            n = i + 1
    return n


def _disfa_videos(root: Path, img_dir: Path) -> None:
    """DISFA ships left-camera videos (``Videos_LeftCamera/LeftVideo<subject>_comp.avi``); decode
    those whose frames are not in ``img_dir`` yet."""
    vids = sorted((root / "Videos_LeftCamera").glob("LeftVideo*.avi"))
    for v in vids:
        subject = v.stem.removeprefix("LeftVideo").removesuffix("_comp")
        if not (img_dir / subject).is_dir() or (img_dir / subject / ".partial").exists():
            (img_dir / subject).mkdir(parents=True, exist_ok=True)
            (img_dir / subject / ".partial").touch()
            decode_video(v, img_dir / subject)
            (img_dir / subject / ".partial").unlink()


def import_disfa(root: str | Path, images: str | Path | None = None,
                 labels: str | Path | None = None,
                 threshold: int = 2) -> tuple[pd.DataFrame, Counter]:
    root = Path(root)
    if images is None and (root / "Videos_LeftCamera").is_dir():
        _disfa_videos(root, root / "img")
    img_dir = _need_dir(Path(images) if images else root / "img", "DISFA image", "--images")
    lab_dir = _need_dir(Path(labels) if labels else root / "ActionUnit_Labels",
                        "DISFA ActionUnit_Labels", "--labels")
    report: Counter = Counter()
    rows = []
    pat = re.compile(r"^(.+)_au(\d+)$", re.IGNORECASE)
    subjects = sorted(d for d in lab_dir.iterdir() if d.is_dir())
    if not subjects:
        raise HivaError(f"no subject folders in {lab_dir}; pass the ActionUnit_Labels folder")
    for sd in subjects:
        per_au: dict[int, dict[int, float]] = {}
        for f in sorted(sd.glob("*.txt")):
            m = pat.match(f.stem)
            if not m or int(m.group(2)) not in AUS:
                report["label files not named <subject>_au<k>.txt"] += 1
                continue
            vals = {}
            for line in f.read_text().splitlines():
                parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
                if len(parts) != 2:
                    if parts:
                        report["malformed label lines"] += 1
                    continue
                vals[int(parts[0])] = float(parts[1])
            per_au[int(m.group(2))] = vals
        frames_dir = img_dir / sd.name
        frames = _frames(frames_dir) if frames_dir.is_dir() else {}
        all_frames = sorted(set().union(*[set(v) for v in per_au.values()]) if per_au else [])
        for fr in all_frames:
            i = fr - 1  # label frames count from 1, image files from 0
            if i not in frames:
                report["labelled frames with no image"] += 1
                continue
            row = {"path": str(frames[i].resolve()), "subject": sd.name, "sequence": "left",
                   "frame": i}
            for k, vals in sorted(per_au.items()):
                v = vals.get(fr)
                row[au_column(k)] = None if v is None else int(v >= threshold)
                row[f"{au_column(k)}_intensity"] = np.nan if v is None else v
            rows.append(row)
    return _finish(rows, report, "DISFA")


_LIST_RE = re.compile(r"^(?P<name>.+?)_(?P<split>train|test|val)_img_path_fold(?P<k>\d+)\.txt$")


def import_megraphau(lists: str | Path, images: str | Path, split: str = "test",
                     aus: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, Counter]:
    """Read ME-GraphAU list files. The ``test`` lists of folds 1..3 cover every frame once; the
    fold number is kept in a ``fold`` column."""
    lists, images = Path(lists), Path(images)
    _need_dir(lists, "ME-GraphAU list", "--lists")
    _need_dir(images, "image", "--images")
    report: Counter = Counter()
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
        for rel, lv in zip(paths, labels):
            if len(lv) != len(order):
                report["label rows with the wrong number of AUs"] += 1
                continue
            p = images / rel
            if not p.is_file():
                report["listed images not found"] += 1
                continue
            parts = Path(rel).parts
            stem = Path(rel).stem
            row = {"path": str(p.resolve()), "subject": parts[0] if len(parts) > 1 else "",
                   "sequence": "/".join(parts[1:-1]), "frame": int(stem) if stem.isdigit() else 0,
                   "fold": k}
            for n, v in zip(order, lv):
                iv = int(float(v))
                row[au_column(n)] = iv if iv in (0, 1) else None
            rows.append(row)
    return _finish(rows, report, "ME-GraphAU")


def export_megraphau(df: pd.DataFrame, out: str | Path, name: str, aus: tuple[int, ...],
                     folds: pd.Series, images_root: str | Path | None = None) -> list[Path]:
    """Write ME-GraphAU list files (train and test, per fold) for ``df``; unknown labels are
    written as -1 (ME-GraphAU's lists have no unknowns; its loss masks nothing)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(images_root) if images_root else None
    written = []

    def rel(p: str) -> str:
        if root is not None:
            try:
                return Path(p).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
        return p

    lab = df[[au_column(n) for n in aus]].astype("Float64").fillna(-1).astype(int).to_numpy()
    paths = [rel(p) for p in df["path"]]
    for k in sorted(set(folds)):
        for split, sel in (("train", folds != k), ("test", folds == k)):
            idx = np.flatnonzero(sel.to_numpy())
            pf = out / f"{name}_{split}_img_path_fold{k}.txt"
            lf = out / f"{name}_{split}_label_fold{k}.txt"
            pf.write_text("".join(paths[i] + "\n" for i in idx))
            lf.write_text("".join(" ".join(map(str, lab[i])) + "\n" for i in idx))
            written += [pf, lf]
    return written


_AU_NAME = re.compile(r"^au0*(\d+)$", re.IGNORECASE)


def import_csv(file: str | Path, path_column: str = "path") -> tuple[pd.DataFrame, Counter]:
    file = Path(file)
    if not file.is_file():
        raise HivaError(f"CSV file {file} does not exist; pass an existing file")
    tab = pd.read_csv(file)
    if path_column not in tab.columns:
        raise HivaError(f"{file.name} has no {path_column!r} column; name the image column "
                        f"{path_column!r} or pass --path-column")
    report: Counter = Counter()
    out = pd.DataFrame()
    base = file.parent.resolve()
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in tab[path_column].astype(str)]
    exists = np.array([p.is_file() for p in paths])
    report["listed images not found"] = int((~exists).sum())
    out["path"] = [str(p) for p in paths]
    out["subject"] = (tab["subject"].astype(str) if "subject" in tab
                      else [p.parent.name for p in paths])
    out["sequence"] = tab["sequence"].astype(str) if "sequence" in tab else ""
    out["frame"] = tab["frame"].astype(int) if "frame" in tab else np.arange(len(tab))
    n_aus = 0
    for c in tab.columns:
        m = _AU_NAME.match(str(c))
        mi = re.match(r"^au0*(\d+)_intensity$", str(c), re.IGNORECASE)
        if m and int(m.group(1)) in AUS:
            v = pd.to_numeric(tab[c], errors="coerce")
            out[au_column(int(m.group(1)))] = v.where(v.isin([0, 1])).astype("Int8")
            n_aus += 1
        elif mi and int(mi.group(1)) in AUS:
            out[f"{au_column(int(mi.group(1)))}_intensity"] = pd.to_numeric(tab[c], errors="coerce")
    if not n_aus:
        raise HivaError(f"{file.name} has no AU columns; name them AU1, AU01 or au12")
    out = out[exists].reset_index(drop=True)
    return out, report


def _finish(rows: list[dict], report: Counter, what: str) -> tuple[pd.DataFrame, Counter]:
    if not rows:
        raise HivaError(f"no {what} frame had both an image and labels ({dict(report) or 'none'}); "
                        "check --root/--images/--labels")
    df = pd.DataFrame(rows)
    aus = sorted(int(c[2:]) for c in df.columns if re.fullmatch(r"AU\d+", c))
    cols = ["path", "subject", "sequence", "frame"] + (["fold"] if "fold" in df else [])
    for n in aus:
        cols.append(au_column(n))
        if f"{au_column(n)}_intensity" in df:
            cols.append(f"{au_column(n)}_intensity")
    df = df[cols]
    for n in aus:
        df[au_column(n)] = df[au_column(n)].astype("Int8")
    known = [n for n in aus if df[au_column(n)].notna().any()]
    drop = [n for n in aus if n not in known]
    if drop:  # an AU never coded anywhere carries no information
        df = df.drop(columns=[c for n in drop for c in (au_column(n), f"{au_column(n)}_intensity")
                              if c in df])
    return df.sort_values(["subject", "sequence", "frame"]).reset_index(drop=True), report
