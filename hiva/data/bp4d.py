"""BP4D in its licensed layout: ``img/<subject>/<task>/<frame>.jpg`` and
``AUCoding/AU_OCC/<subject>_<task>.csv`` (header ``0,1,2,...``: column 0 the frame number,
column k AU k; 0/1, 9 = unknown)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hiva.data import importing
from hiva.data.importing import ImportReport
from hiva.errors import HivaError
from hiva.facs import AUS, au_column


def import_bp4d(root: str | Path, images: str | Path | None = None,
                labels: str | Path | None = None) -> tuple[pd.DataFrame, ImportReport]:
    root = Path(root)
    img_dir = importing.need_dir(Path(images) if images else root / "img", "BP4D image",
                                 "--images")
    lab_dir = importing.need_dir(Path(labels) if labels else root / "AUCoding" / "AU_OCC",
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
    for a in sorted(coded):
        for name, (have, n_rows) in file_aus.items():
            if a not in have and n_rows:
                report.add(f"frames whose label file has no column {a} (AU{a} left unknown)",
                           name, n=n_rows, kept=True)
    return importing.finish(rows, report, "BP4D")
