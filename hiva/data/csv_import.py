"""A plain CSV of labels: a ``path`` column and AU columns (``AU1``/``AU01``/``au12``, optional
``AUxx_intensity``), optional ``subject``, ``sequence`` and ``frame`` columns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hiva.data import importing
from hiva.data.importing import ImportReport
from hiva.errors import HivaError
from hiva.facs import AUS, au_column

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
            text = tab[c].notna() & v.isna()  # a cell that is not a number ("yes")
            if text.any():
                report.add(importing.R_NOT_NUMBER, f"{file.name} column {c}", n=int(text.sum()),
                           kept=True)
            odd = v.notna() & ~v.isin([0, 1])
            if odd.any():
                report.add(importing.R_ODD_VALUE, f"{file.name} column {c}", n=int(odd.sum()),
                           kept=True)
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
    out = importing.one_row_per_frame(out, report, file.name)
    importing.require_known(out, file.name, "write the AU columns as 0/1 (empty or 9: unknown; "
                            f"{'; '.join(report.lines()) or 'no label cell given'})")
    return out, report
