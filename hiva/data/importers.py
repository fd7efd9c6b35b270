"""Importers from the raw formats of BP4D, DISFA, ME-GraphAU list files and plain CSV into a
manifest DataFrame (see hiva.data.manifest), and the ME-GraphAU list exporter. Each importer
returns ``(df, report)`` where ``report`` (an ``ImportReport``, a Counter) counts what was skipped
or left unknown and why, with a few example files per reason; nothing is dropped silently, and a
run that imports no frame at all is an error.

- BP4D: ``img/<subject>/<task>/<frame>.jpg`` and ``AUCoding/AU_OCC/<subject>_<task>.csv``
  (header ``0,1,2,...``: column 0 the frame number, column k AU k; 0/1, 9 = unknown).
- DISFA: ``img/<subject>/<i>.png`` (left camera, i from 0; decoded from
  ``Videos_LeftCamera/LeftVideo<subject>_comp.avi`` when only the videos are there) and
  ``ActionUnit_Labels/<subject>/<subject>_au<k>.txt`` (``frame,intensity``, frames from 1).
- ME-GraphAU: ``<NAME>_<split>_img_path_fold<k>.txt`` + ``<NAME>_<split>_label_fold<k>.txt``
  (one relative path / one space-separated 0/1 row per line, 9 = unknown; AU order of the BP4D
  or DISFA set). Fold k is ME-GraphAU's fold k (``hiva.data.folds``: fold k tests part 4 - k).
- CSV: a ``path`` column and AU columns (``AU1``/``AU01``/``au12``), optional subject,
  sequence and frame columns.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from hiva.errors import HivaError
from hiva.facs import AU_SETS, AUS, au_column

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
UNKNOWN = 9  # ME-GraphAU's lists keep BP4D's 9 (not coded); hiva reads it back as unknown


class ImportReport(Counter):
    """What an importer skipped (or kept with a label left unknown), counted by reason, with up
    to ``MAX_EXAMPLES`` examples (file, file:line) per reason in ``examples``. Reasons in ``kept``
    describe frames that were imported with some labels unknown, not skipped."""

    MAX_EXAMPLES = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.examples: dict[str, list[str]] = {}
        self.kept: set[str] = set()

    def add(self, reason: str, where: str | None = None, n: int = 1, kept: bool = False) -> None:
        self[reason] += n
        if kept:
            self.kept.add(reason)
        if where is not None:
            ex = self.examples.setdefault(reason, [])
            if where not in ex and len(ex) < self.MAX_EXAMPLES:
                ex.append(where)

    def lines(self) -> list[str]:
        """One line per reason: ``skipped N: reason (e.g. a.csv, b.csv)`` or ``kept N: ...``."""
        out = []
        for why, k in sorted(self.items()):
            if not k:
                continue
            ex = self.examples.get(why)
            tail = f" (e.g. {', '.join(ex)})" if ex else ""
            out.append(f"{'kept' if why in self.kept else 'skipped'} {k}: {why}{tail}")
        return out


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


def _int(cell: str) -> int:
    """``"1"`` / ``"1.0"`` → 1; anything else (empty, ``nan``, ``0.5``, text) → ValueError."""
    try:
        return int(cell)
    except ValueError:
        v = float(cell)
        if not v.is_integer():
            raise ValueError(cell) from None
        return int(v)


def _read_text(f: Path, report: ImportReport, where: str) -> str | None:
    try:
        return f.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not a column
    except OSError as e:
        report.add("unreadable label files", f"{where} ({type(e).__name__})")
        return None


# Reasons shared by the importers (tests and users match on them).
R_EMPTY = "empty label files (0 bytes or blank)"
R_NO_IMAGE = "labelled frames with no image"
R_BAD_ROW = "label rows cut short or malformed"
R_NO_FRAME_COL = "label files with no frame column (column 0 of the header)"
R_NO_ROWS = "label files with a header but no frame rows (file cut short?)"
R_ODD_VALUE = "label values other than 0/1/9 (left unknown)"


def import_bp4d(root: str | Path, images: str | Path | None = None,
                labels: str | Path | None = None) -> tuple[pd.DataFrame, ImportReport]:
    root = Path(root)
    img_dir = _need_dir(Path(images) if images else root / "img", "BP4D image", "--images")
    lab_dir = _need_dir(Path(labels) if labels else root / "AUCoding" / "AU_OCC",
                        "BP4D AU_OCC label", "--labels")
    report = ImportReport()
    rows = []
    csvs = sorted(lab_dir.glob("*.csv"))
    if not csvs:
        raise HivaError(f"no <subject>_<task>.csv files in {lab_dir}; pass the AU_OCC folder")
    file_aus: dict[str, tuple[set[int], int]] = {}  # file → (AU columns it has, frames imported)
    coded: set[int] = set()  # AUs with a 0/1 somewhere
    for f in csvs:
        if "_" not in f.stem:
            report.add("label files with no <subject>_<task> name", f.name)
            continue
        subject, task = f.stem.split("_", 1)
        text = _read_text(f, report, f.name)
        if text is None:
            continue
        if not text.strip():
            report.add(R_EMPTY, f.name)
            continue
        lines = text.splitlines()
        header = [c.strip() for c in lines[0].split(",")]
        if "0" not in header:
            report.add(R_NO_FRAME_COL, f.name)
            continue
        fi = header.index("0")
        au_idx = {int(c): j for j, c in enumerate(header) if c.isdigit() and int(c) in AUS}
        body = [(n, ln) for n, ln in enumerate(lines[1:], start=2) if ln.strip()]
        if not body:
            report.add(R_NO_ROWS, f.name)
            continue
        seq_dir = img_dir / subject / task
        frames = _frames(seq_dir) if seq_dir.is_dir() else {}
        seen: set[int] = set()
        n_rows = 0
        for n, ln in body:
            cells = [c.strip() for c in ln.split(",")]
            try:
                if len(cells) != len(header):
                    raise ValueError(ln)
                fr = _int(cells[fi])
                vals = {a: _int(cells[j]) for a, j in au_idx.items()}
            except ValueError:
                report.add(R_BAD_ROW, f"{f.name}:{n}")
                continue
            if fr in seen:
                report.add("duplicate frame rows (the first is kept)", f"{f.name}:{n}")
                continue
            seen.add(fr)
            if fr not in frames:
                report.add(R_NO_IMAGE, f"{f.name}:{n}")
                continue
            row = {"path": str(frames[fr].resolve()), "subject": subject, "sequence": task,
                   "frame": fr}
            for a, v in vals.items():
                if v in (0, 1):
                    row[au_column(a)] = v
                    coded.add(a)
                else:  # 9 = not coded
                    row[au_column(a)] = None
                    if v != UNKNOWN:
                        report.add(R_ODD_VALUE, f"{f.name}:{n}", kept=True)
            rows.append(row)
            n_rows += 1
        file_aus[f.name] = (set(au_idx), n_rows)
    for a in sorted(coded):
        for name, (have, n_rows) in file_aus.items():
            if a not in have and n_rows:
                report.add(f"frames whose label file has no column {a} (AU{a} left unknown)",
                           name, n=n_rows, kept=True)
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
                 threshold: int = 2) -> tuple[pd.DataFrame, ImportReport]:
    root = Path(root)
    if images is None and (root / "Videos_LeftCamera").is_dir():
        _disfa_videos(root, root / "img")
    img_dir = _need_dir(Path(images) if images else root / "img", "DISFA image", "--images")
    lab_dir = _need_dir(Path(labels) if labels else root / "ActionUnit_Labels",
                        "DISFA ActionUnit_Labels", "--labels")
    report = ImportReport()
    rows = []
    pat = re.compile(r"^(.+)_au(\d+)$", re.IGNORECASE)
    subjects = sorted(d for d in lab_dir.iterdir() if d.is_dir())
    if not subjects:
        raise HivaError(f"no subject folders in {lab_dir}; pass the ActionUnit_Labels folder")
    labels_of: dict[str, dict[int, dict[int, float]]] = {}
    for sd in subjects:
        per_au: dict[int, dict[int, float]] = {}
        for f in sorted(sd.glob("*.txt")):
            where = f"{sd.name}/{f.name}"
            m = pat.match(f.stem)
            if not m or int(m.group(2)) not in AUS:
                report.add("label files not named <subject>_au<k>.txt", where)
                continue
            text = _read_text(f, report, where)
            if text is None:
                continue
            if not text.strip():
                report.add(R_EMPTY, where)
                continue
            vals = {}
            for n, line in enumerate(text.splitlines(), start=1):
                parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
                if not parts:
                    continue
                try:
                    if len(parts) != 2:
                        raise ValueError(line)
                    fr, v = _int(parts[0]), float(parts[1])
                    if not math.isfinite(v):
                        raise ValueError(line)
                except ValueError:
                    report.add(R_BAD_ROW, f"{where}:{n}")
                    continue
                vals[fr] = v
            per_au[int(m.group(2))] = vals
        labels_of[sd.name] = per_au
    all_aus = sorted({k for per_au in labels_of.values() for k in per_au})
    for subject, per_au in labels_of.items():
        frames_dir = img_dir / subject
        frames = _frames(frames_dir) if frames_dir.is_dir() else {}
        labelled = sorted(set().union(*per_au.values())) if per_au else []
        unlabelled = set(frames) - {fr - 1 for fr in labelled}
        if unlabelled:
            report.add("images with no label in any AU file (not imported)", subject,
                       n=len(unlabelled))
        for fr in labelled:
            i = fr - 1  # label frames count from 1, image files from 0
            if i not in frames:
                report.add(R_NO_IMAGE, f"{subject} frame {fr}")
                continue
            row = {"path": str(frames[i].resolve()), "subject": subject, "sequence": "left",
                   "frame": i}
            for k in all_aus:
                v = per_au.get(k, {}).get(fr)
                if v is None:
                    report.add(f"frames with no label for AU{k} (label file missing or short; "
                               f"AU{k} left unknown)", f"{subject}_au{k}.txt", kept=True)
                row[au_column(k)] = None if v is None else int(v >= threshold)
                row[f"{au_column(k)}_intensity"] = np.nan if v is None else v
            rows.append(row)
    return _finish(rows, report, "DISFA")


_LIST_RE = re.compile(r"^(?P<name>.+?)_(?P<split>train|test|val)_img_path_fold(?P<k>\d+)\.txt$")


def import_megraphau(lists: str | Path, images: str | Path, split: str = "test",
                     aus: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, ImportReport]:
    """Read ME-GraphAU list files. The ``test`` lists of folds 1..3 cover every frame once; the
    fold number (ME-GraphAU's) is kept in a ``fold`` column; 9 reads as unknown. DISFA lists get
    ``sequence`` "left" (the left camera), as ``import_disfa`` writes it."""
    lists, images = Path(lists), Path(images)
    _need_dir(lists, "ME-GraphAU list", "--lists")
    _need_dir(images, "image", "--images")
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
                ints = [_int(v) for v in lv]
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
                if iv not in (0, 1, UNKNOWN):
                    report.add(R_ODD_VALUE, f"{lab.name}:{n}", kept=True)
            rows.append(row)
    return _finish(rows, report, "ME-GraphAU")


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
    from hiva.data.folds import BP4D_PARTS, DISFA_PARTS

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
    lab = (df[[au_column(n) for n in aus]].astype("Float64").fillna(UNKNOWN).astype(int)
           .to_numpy()[order])
    rels = [rel(paths[i]) for i in order]
    if report is not None and (lab == UNKNOWN).any():
        report["unknown labels written as 9, as ME-GraphAU's BP4D lists keep them (its test-time "
               "statistics() accepts only 0/1)"] += int((lab == UNKNOWN).sum())
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


_AU_NAME = re.compile(r"^au0*(\d+)$", re.IGNORECASE)


def import_csv(file: str | Path, path_column: str = "path") -> tuple[pd.DataFrame, ImportReport]:
    file = Path(file)
    if not file.is_file():
        raise HivaError(f"CSV file {file} does not exist; pass an existing file")
    try:
        tab = pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise HivaError(f"{file} is empty; write a header row (path and AU columns) and one row "
                        "per image") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise HivaError(f"{file} is not a readable CSV ({str(e).splitlines()[0]}); fix that "
                        "line or re-export the file as CSV") from None
    if path_column not in tab.columns:
        raise HivaError(f"{file.name} has no {path_column!r} column; name the image column "
                        f"{path_column!r} or pass --path-column")
    report = ImportReport()
    out = pd.DataFrame()
    base = file.parent.resolve()
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in tab[path_column].astype(str)]
    exists = np.array([p.is_file() for p in paths], dtype=bool)
    for n in np.flatnonzero(~exists):
        report.add("listed images not found", f"{file.name}:{n + 2}")
    out["path"] = [str(p) for p in paths]
    out["subject"] = (tab["subject"].astype(str) if "subject" in tab
                      else [p.parent.name for p in paths])
    out["sequence"] = tab["sequence"].astype(str) if "sequence" in tab else ""
    if "frame" in tab:
        fr = pd.to_numeric(tab["frame"], errors="coerce")
        bad = fr.isna() | (fr % 1 != 0)
        if bad.any():
            n = int(np.flatnonzero(bad.to_numpy())[0])
            raise HivaError(f"{file.name} line {n + 2}: frame {tab['frame'].iloc[n]!r} is not an "
                            "integer; fix it or drop the frame column")
        out["frame"] = fr.astype("int64")
    else:
        out["frame"] = np.arange(len(tab))
    n_aus = 0
    for c in tab.columns:
        m = _AU_NAME.match(str(c))
        mi = re.match(r"^au0*(\d+)_intensity$", str(c), re.IGNORECASE)
        if m and int(m.group(1)) in AUS:
            v = pd.to_numeric(tab[c], errors="coerce")
            odd = v.notna() & ~v.isin([0, 1])
            if odd.any():
                report.add(R_ODD_VALUE, f"{file.name} column {c}", n=int(odd.sum()), kept=True)
            out[au_column(int(m.group(1)))] = v.where(v.isin([0, 1])).astype("Int8")
            n_aus += 1
        elif mi and int(mi.group(1)) in AUS:
            out[f"{au_column(int(mi.group(1)))}_intensity"] = pd.to_numeric(tab[c], errors="coerce")
    if not n_aus:
        raise HivaError(f"{file.name} has no AU columns; name them AU1, AU01 or au12")
    out = out[exists].reset_index(drop=True)
    if out.empty:
        raise HivaError(f"none of the {len(tab)} images listed in {file} exists; paths are read "
                        f"relative to {base} (fix them or pass --path-column)")
    return out, report


def _finish(rows: list[dict], report: ImportReport, what: str
            ) -> tuple[pd.DataFrame, ImportReport]:
    if not rows:
        why = "; ".join(report.lines()) or "no labelled frames found"
        raise HivaError(f"no {what} frame was imported ({why}); check --root/--images/--labels")
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
    if not known:
        raise HivaError(f"every {what} label read is unknown (9 or missing) in {len(df)} frames; "
                        "check that the label files are the AU occurrence files")
    drop = [n for n in aus if n not in known]
    if drop:  # an AU never coded anywhere carries no information
        df = df.drop(columns=[c for n in drop for c in (au_column(n), f"{au_column(n)}_intensity")
                              if c in df])
    return df.sort_values(["subject", "sequence", "frame"]).reset_index(drop=True), report
