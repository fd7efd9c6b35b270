"""BP4D in its licensed layout: ``img/<subject>/<task>/<frame>.jpg`` and
``AUCoding/AU_OCC/<subject>_<task>.csv`` (header ``0,1,2,...``: column 0 the frame number,
column k AU k; 0/1, 9 = unknown). Where the release has them (FERA 2015's layout), the intensity
codes ``AUCoding/AU_INT/AU06/<subject>_<task>_AU06.csv`` (one folder per AU: 6, 10, 12, 14, 17;
lines ``frame,intensity``, 0-5, 9 = unknown) become ``AUxx_intensity`` (unknown: NaN); the
occurrence labels still come from AU_OCC alone."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from hiva.data import importing
from hiva.data.importing import ImportReport
from hiva.errors import HivaError
from hiva.facs import AUS, au_column

R_INT_ODD = "intensity codes other than 0-5/9 (left unknown)"
R_INT_ORPHAN = "intensity codes for frames with no AU_OCC row (not imported)"


def read_intensities(int_dir: Path, report: ImportReport) -> dict[tuple[str, str, int], dict]:
    """``{(subject, task, frame): {AU: intensity 0-5 or None (unknown)}}`` from an AU_INT
    folder; bad lines and odd codes are counted in ``report``, never fatal. A frame listed
    twice in one file with different codes is unknown (``importing.merge_labels``)."""
    out: dict[tuple[str, str, int], dict] = {}
    for au_dir in sorted(p for p in int_dir.iterdir() if p.is_dir()):
        m = re.fullmatch(r"AU0*(\d+)", au_dir.name, re.IGNORECASE)
        if not m or int(m.group(1)) not in AUS:
            report.add("AU_INT folders not named AUxx (ignored)", au_dir.name)
            continue
        au = int(m.group(1))
        for f in sorted(au_dir.glob("*.csv")):
            where = f"{au_dir.name}/{f.name}"
            fm = re.fullmatch(r"([^_]+)_(.+)_AU0*\d+", f.stem, re.IGNORECASE)
            if not fm:
                report.add("AU_INT files with no <subject>_<task>_AUxx name", where)
                continue
            text = importing.read_label_text(f, report, where)
            if text is None:
                continue
            seen: dict[int, list[dict]] = {}
            for n, ln in enumerate(text.splitlines(), start=1):
                if not ln.strip():
                    continue
                cells = [c.strip() for c in ln.split(",")]
                try:
                    if len(cells) != 2:
                        raise ValueError(ln)
                    fr, v = importing.label_int(cells[0]), importing.label_int(cells[1])
                except ValueError:
                    report.add(importing.R_BAD_ROW, f"{where}:{n}")
                    continue
                if not 0 <= v <= 5:
                    if v != importing.UNKNOWN:
                        report.add(R_INT_ODD, f"{where}:{n}", kept=True)
                    v = None
                seen.setdefault(fr, []).append({au: None if v is None else float(v)})
            for fr, listings in seen.items():
                got = (listings[0] if len(listings) == 1
                       else importing.merge_labels(listings, report, f"{where}: frame {fr}"))
                out.setdefault((fm.group(1), fm.group(2), fr), {}).update(got)
    return out


def import_bp4d(root: str | Path, images: str | Path | None = None,
                labels: str | Path | None = None,
                intensity: str | Path | None = None) -> tuple[pd.DataFrame, ImportReport]:
    """BP4D's frames with their AU_OCC labels, plus ``AUxx_intensity`` from ``intensity`` (an
    AU_INT folder; default ``ROOT/AUCoding/AU_INT`` where it exists)."""
    root = Path(root)
    img_dir = importing.need_dir(Path(images) if images else root / "img", "BP4D image",
                                 "--images")
    lab_dir = importing.need_dir(Path(labels) if labels else root / "AUCoding" / "AU_OCC",
                                 "BP4D AU_OCC label", "--labels")
    report = ImportReport()
    int_dir = Path(intensity) if intensity else root / "AUCoding" / "AU_INT"
    if intensity:
        importing.need_dir(int_dir, "BP4D AU_INT intensity", "--intensity")
    codes = read_intensities(int_dir, report) if int_dir.is_dir() else {}
    int_aus = sorted({a for v in codes.values() for a in v})
    used: set[tuple[str, str, int]] = set()
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
        text = importing.read_label_text(f, report, f.name)
        if text is None:
            continue
        if not text.strip():
            report.add(importing.R_EMPTY, f.name)
            continue
        lines = text.splitlines()
        header = [c.strip() for c in lines[0].split(",")]
        if "0" not in header:
            report.add(importing.R_NO_FRAME_COL, f.name)
            continue
        fi = header.index("0")
        au_idx = {int(c): j for j, c in enumerate(header) if c.isdigit() and int(c) in AUS}
        body = [(n, ln) for n, ln in enumerate(lines[1:], start=2) if ln.strip()]
        if not body:
            report.add(importing.R_NO_ROWS, f.name)
            continue
        seq_dir = img_dir / subject / task
        frames = importing.numbered_frames(seq_dir) if seq_dir.is_dir() else {}
        n_rows = 0
        for n, ln in body:
            cells = [c.strip() for c in ln.split(",")]
            try:
                if len(cells) != len(header):
                    raise ValueError(ln)
                fr = importing.label_int(cells[fi])
                vals = {a: importing.label_int(cells[j]) for a, j in au_idx.items()}
            except ValueError:
                report.add(importing.R_BAD_ROW, f"{f.name}:{n}")
                continue
            if fr not in frames:
                report.add(importing.R_NO_IMAGE, f"{f.name}:{n}")
                continue
            row = {"path": str(frames[fr].resolve()), "subject": subject, "sequence": task,
                   "frame": fr}
            got = codes.get((subject, task, fr), {})
            used.add((subject, task, fr))
            for a in int_aus:
                v = got.get(a)
                row[f"{au_column(a)}_intensity"] = float("nan") if v is None else v
            for a, v in vals.items():
                if v in (0, 1):
                    row[au_column(a)] = v
                    coded.add(a)
                else:  # 9 = not coded
                    row[au_column(a)] = None
                    if v != importing.UNKNOWN:
                        report.add(importing.R_ODD_VALUE, f"{f.name}:{n}", kept=True)
            rows.append(row)
            n_rows += 1
        file_aus[f.name] = (set(au_idx), n_rows)
    orphans = [k for k in codes if k not in used]
    if orphans:
        report.add(R_INT_ORPHAN, f"{orphans[0][0]}_{orphans[0][1]} frame {orphans[0][2]}",
                   n=len(orphans))
    for a in sorted(coded):
        for name, (have, n_rows) in file_aus.items():
            if a not in have and n_rows:
                report.add(f"frames whose label file has no column {a} (AU{a} left unknown)",
                           name, n=n_rows, kept=True)
    return importing.finish(rows, report, "BP4D")
