"""What every dataset importer shares: the skip report, the skip reasons users and tests match on,
the label-cell and frame-folder readers, and ``finish``, the last step that turns rows into a
manifest DataFrame. The importers themselves: ``hiva.data.importers``."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from hiva.errors import HivaError
from hiva.facs import au_column

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
UNKNOWN = 9  # ME-GraphAU's lists keep BP4D's 9 (not coded); hiva reads it back as unknown

# Reasons shared by the importers (tests and users match on them).
R_EMPTY = "empty label files (0 bytes or blank)"
R_NO_IMAGE = "labelled frames with no image"
R_BAD_ROW = "label rows cut short or malformed"
R_NO_FRAME_COL = "label files with no frame column (column 0 of the header)"
R_NO_ROWS = "label files with a header but no frame rows (file cut short?)"
R_ODD_VALUE = "label values other than 0/1/9 (left unknown)"
R_NOT_NUMBER = "label values that are not numbers (left unknown)"
R_TWICE_SAME = "frames labelled twice with the same labels (one kept)"
R_TWICE_CONFLICT = "labels given twice for one frame with different values (left unknown)"
R_FRAME_TWO_IMAGES = "frames of one subject and sequence listed with two images (skipped)"


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


def need_dir(p: Path, what: str, flag: str) -> Path:
    if not p.is_dir():
        raise HivaError(f"{what} folder {p} does not exist; pass the right {flag}")
    return p


def numbered_frames(folder: Path) -> dict[int, Path]:
    """Images in ``folder`` keyed by the integer in their file name (``0042.jpg`` → 42)."""
    out = {}
    for f in folder.iterdir():
        if f.suffix.lower() in IMAGE_EXTS and f.stem.isdigit():
            out[int(f.stem)] = f
    return out


def label_int(cell: str) -> int:
    """``"1"`` / ``"1.0"`` → 1; anything else (empty, ``nan``, ``0.5``, text) → ValueError."""
    try:
        return int(cell)
    except ValueError:
        v = float(cell)
        if not v.is_integer():
            raise ValueError(cell) from None
        return int(v)


def read_label_text(f: Path, report: ImportReport, where: str) -> str | None:
    """The text of label file ``f``, or None (counted in ``report``) when it cannot be read."""
    try:
        return f.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not a column
    except OSError as e:
        report.add("unreadable label files", f"{where} ({type(e).__name__})")
        return None


def merge_labels(listings: list[dict], report: ImportReport, where: str) -> dict:
    """One frame's labels given more than once (a label file listing a frame twice, a CSV
    listing an image twice): per key, the value every listing that gives one agrees on; a key
    they give different values for is unknown (None), whatever the order, never the last one
    read. Counted in ``report``."""
    out, conflict = {}, False
    for k in dict.fromkeys(k for row in listings for k in row):
        known = {row[k] for row in listings if k in row and not _missing(row[k])}
        out[k] = next(iter(known)) if len(known) == 1 else None
        conflict |= len(known) > 1
    report.add(R_TWICE_CONFLICT if conflict else R_TWICE_SAME, where, kept=True)
    return out


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA


def one_row_per_frame(df: pd.DataFrame, report: ImportReport, where: str) -> pd.DataFrame:
    """An image listed more than once becomes one row (``merge_labels``); two images listed as
    the same frame of a subject's sequence are both skipped (which one is that frame is
    unknown). Counted in ``report``; the order of the first listing kept."""
    labels = [c for c in df.columns if c not in ("path", "subject", "sequence", "frame", "fold")]
    df = df.reset_index(drop=True)
    if df["path"].duplicated().any():
        for path, idx in df.groupby("path", sort=False).indices.items():
            if len(idx) > 1:
                row = merge_labels([df.loc[i, labels].to_dict() for i in idx], report,
                                   f"{where}: {'/'.join(Path(path).parts[-3:])}")
                for c, v in row.items():
                    df.loc[idx[0], c] = None if _missing(v) else v
        df = df[~df["path"].duplicated()]
    key = ["subject", "sequence", "frame"]
    clash = df.duplicated(key, keep=False)
    if clash.any():
        for _, g in df[clash].groupby(key, sort=False):
            report.add(R_FRAME_TWO_IMAGES, f"{where}: {', '.join(Path(p).name for p in g.path)}",
                       n=len(g))
        df = df[~clash]
    return df.reset_index(drop=True)


def require_known(df: pd.DataFrame, what: str, hint: str) -> None:
    """Refuse a manifest in which no AU label is known: every label was unknown, or read as
    something other than a label (the report says what)."""
    au_cols = [c for c in df.columns if re.fullmatch(r"AU\d+", c)]
    if not any(df[c].notna().any() for c in au_cols):
        raise HivaError(f"every {what} label read is unknown in {len(df)} frames; {hint}")


def finish(rows: list[dict], report: ImportReport, what: str
           ) -> tuple[pd.DataFrame, ImportReport]:
    """``rows`` (one dict per frame) as a manifest DataFrame in manifest column order, sorted by
    subject, sequence, frame; AUs never coded anywhere dropped. No row, or no known label: an
    error that says what was skipped. An image or a frame listed twice: ``one_row_per_frame``."""
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
    df = one_row_per_frame(df, report, what)
    require_known(df, what, "check that the label files are the AU occurrence files")
    known = [n for n in aus if df[au_column(n)].notna().any()]
    drop = [n for n in aus if n not in known]
    if drop:  # an AU never coded anywhere carries no information
        df = df.drop(columns=[c for n in drop for c in (au_column(n), f"{au_column(n)}_intensity")
                              if c in df])
    return df.sort_values(["subject", "sequence", "frame"]).reset_index(drop=True), report
