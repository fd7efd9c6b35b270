"""The table ``hiva predict`` writes, one row per face (a frame without a face: one row), in input
order, in one of three layouts (``--format``):

``hiva`` (default)::

    input, frame, face_id, track_id, timestamp, confidence, success, face_x, face_y,
    face_width, face_height, AU01_p ... AUnn_p, AU01_c ... AUnn_c[, AU01_r ... AUnn_r]

``openface``: OpenFace 2's leading columns in its order (``FeatureExtraction``'s CSV, which
scripts often skip by position), then the face box, the 0/1 decisions under OpenFace's names, our
probabilities, the track and the input last (OpenFace writes one file per input and has no
such columns; py-feat's ``read_openface`` replaces ``input`` by the file's name)::

    frame, face_id, timestamp, confidence, success, face_x, face_y, face_width, face_height,
    AU01_r ... AU45_r, AU01_c ... AU45_c, (other AUs' _r, _c), AU01_p ... AUnn_p, track_id, input

The ``_r`` and ``_c`` blocks hold OpenFace 2's own AUs (``OPENFACE_R``: 17 intensities,
``OPENFACE_C``: 18 occurrences) in its order whatever the model predicts, empty where hiva has no
value (an AU the model was not trained on; ``_r`` of a model without the intensity head), so
py-feat's ``read_openface(...).aus``, which asks for exactly those columns, works as on
OpenFace's own files; the model's AUs outside that list (AU24 of BP4D, OpenGraphAU's sides) follow
as their own ``_r``/``_c`` columns.

``AUxx_r`` is the FACS intensity (0-5) of a model trained with the intensity head
(``model.intensity``); in the ``hiva`` layout those columns come last, and only with the head.

``feat``: py-feat's ``Detector.detect`` layout, which ``feat.utils.io.read_feat`` reads back
(``.aus`` = the columns whose name holds "AU", ``.faceboxes`` = ``FaceRect*``, ``FaceScore``)::

    frame, FaceRectX, FaceRectY, FaceRectWidth, FaceRectHeight, FaceScore, AU01 ... AUnn, input,
    face_id, track_id, timestamp

``AUxx`` there is the probability; decisions are left out (any column holding "AU" would join
``.aus``).

``track_id`` (``hiva.predict.tracks``) follows a face across the frames of an input; -1 on a
frame without a face. CSV or Parquet by the file's suffix. ``TableWriter`` streams batches of
rows to the file and renames it into place at the end (a kill leaves no half table);
``read_table`` gives back the dtypes ``Detector.detect`` returns. Columns are described in
``hiva.predict.detector``.
"""

from __future__ import annotations

import os
from pathlib import Path

from hiva.facs import au_column

FORMATS = ("hiva", "openface", "feat")
BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")
META_COLUMNS = ("input", "frame", "face_id", "track_id", "timestamp", "confidence", "success",
                *BOX_COLUMNS)
OPENFACE_LEAD = ("frame", "face_id", "timestamp", "confidence", "success")
FEAT_BOX = ("FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight", "FaceScore")
OUT_SUFFIXES = (".csv", ".parquet")
# OpenFace 2's AU columns (FeatureExtraction's CSV, py-feat's openface_AU_columns): intensities of
# 17 AUs, occurrences of those and AU28.
OPENFACE_R = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
OPENFACE_C = tuple(sorted((*OPENFACE_R, 28)))


def _stem(a) -> str:
    """An AU number (``AU04``) or an output's own stem (``AU01L``, OpenGraphAU's sides)."""
    return a if isinstance(a, str) else au_column(a)


def prob_columns(aus) -> list[str]:
    return [f"{_stem(a)}_p" for a in aus]


def class_columns(aus) -> list[str]:
    return [f"{_stem(a)}_c" for a in aus]


def intensity_columns(aus) -> list[str]:
    return [f"{_stem(a)}_r" for a in aus]


def columns(outputs, fmt: str = "hiva", intensities=()) -> list[str]:
    """The columns of a ``fmt`` table for a model with these outputs (and intensity outputs:
    the AUs of its intensity head, if any), in order."""
    p, c, r = prob_columns(outputs), class_columns(outputs), intensity_columns(intensities)
    if fmt == "hiva":
        return [*META_COLUMNS, *p, *c, *r]
    if fmt == "openface":
        of_r, of_c = intensity_columns(OPENFACE_R), class_columns(OPENFACE_C)
        return [*OPENFACE_LEAD, *BOX_COLUMNS, *of_r, *of_c, *(x for x in r if x not in of_r),
                *(x for x in c if x not in of_c), *p, "track_id", "input"]
    if fmt == "feat":
        return ["frame", *FEAT_BOX, *(_stem(a) for a in outputs), "input", "face_id",
                "track_id", "timestamp"]
    raise ValueError(f"unknown format {fmt!r}")


def in_format(df, outputs, fmt: str = "hiva"):
    """The hiva-layout table ``df`` (``Detector``'s rows, typed) in layout ``fmt``: the same
    values, renamed and reordered (``openface``: OpenFace's AU columns the model has no value
    for added empty)."""
    if fmt == "hiva":
        return df
    if fmt == "feat":
        ren = dict(zip(("face_x", "face_y", "face_width", "face_height", "confidence"),
                       FEAT_BOX))
        ren.update({f"{_stem(a)}_p": _stem(a) for a in outputs})
        df = df.rename(columns=ren)
        out = df[columns(outputs, fmt)]
    else:
        import pandas as pd

        intensities = [c[:-2] for c in df.columns if c.endswith("_r")]
        cols = columns(outputs, fmt, intensities)
        empty = {c: pd.Series(pd.NA if c.endswith("_c") else float("nan"), index=df.index,
                              dtype="Int8" if c.endswith("_c") else "float64")
                 for c in cols if c not in df.columns}
        out = pd.concat([df, pd.DataFrame(empty, index=df.index)], axis=1)[cols] if empty \
            else df[cols]
    out.attrs = dict(df.attrs)
    return out


def read_table(path):
    """Read a table written by ``hiva predict`` back with the same dtypes ``detect`` returns."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    df = pd.read_csv(path, dtype={"input": "string"}, keep_default_na=True)
    for c in df.columns:
        if c.endswith("_c"):
            df[c] = df[c].astype("Int8")
    return df


class TableWriter:
    """Append batches of rows (DataFrames with the same columns and dtypes) to a CSV or Parquet
    file, written under a temporary name and renamed into place by ``close()``; ``abort()`` (or
    leaving the ``with`` block on an exception) removes it. Memory holds one batch at a time."""

    def __init__(self, out, empty=None):
        self.out = Path(out)
        if self.out.suffix.lower() not in OUT_SUFFIXES:
            raise ValueError(f"{out}: end it in .csv or .parquet")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.with_name(f".{self.out.name}.partial")
        self.parquet = self.out.suffix.lower() == ".parquet"
        self.empty = empty  # an empty frame with the columns: what an empty table holds
        self.rows = 0
        self._fh = None  # CSV file object or pyarrow ParquetWriter

    def write(self, df) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._fh is None:
                self._fh = pq.ParquetWriter(str(self.tmp), table.schema)
            self._fh.write_table(table)
        else:
            if self._fh is None:
                self._fh = open(self.tmp, "w", newline="", encoding="utf-8")
                df.to_csv(self._fh, index=False)
            else:
                df.to_csv(self._fh, index=False, header=False)
            self._fh.flush()
        self.rows += len(df)

    def close(self) -> Path:
        if self._fh is None and self.empty is not None:
            self.write(self.empty)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_table(df, out) -> Path:
    """CSV or Parquet by suffix, written to a temp file and renamed (a kill leaves no half
    table)."""
    with TableWriter(out, empty=df) as w:
        if len(df):
            w.write(df)
    return Path(out)
