"""The table ``hiva predict`` writes, one row per frame in input order, in OpenFace's spirit::

    input, frame, timestamp, face_id, confidence, success, AU01_p ... AUnn_p, AU01_c ... AUnn_c

CSV or Parquet by the file's suffix; ``read_table`` gives back the dtypes ``Detector.detect``
returns. Columns are described in ``hiva.predict.detector``.
"""

from __future__ import annotations

from pathlib import Path

META_COLUMNS = ("input", "frame", "timestamp", "face_id", "confidence", "success")
OUT_SUFFIXES = (".csv", ".parquet")


def _stem(a) -> str:
    """An AU number (``AU04``) or an output's own stem (``AU01L``, OpenGraphAU's sides)."""
    from hiva.facs import au_column

    return a if isinstance(a, str) else au_column(a)


def prob_columns(aus) -> list[str]:
    return [f"{_stem(a)}_p" for a in aus]


def class_columns(aus) -> list[str]:
    return [f"{_stem(a)}_c" for a in aus]


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


def write_table(df, out) -> Path:
    """CSV or Parquet by suffix, written to a temp file and renamed (a kill leaves no half
    table)."""
    from hiva.runtime import atomic_write

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_write(out, lambda tmp: df.to_csv(tmp, index=False))
    return out
