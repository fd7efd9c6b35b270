"""The manifest: one Parquet table per image set, the format every importer writes and ``hiva
train`` reads.

Columns: ``path`` (str, relative to the manifest's folder when the image lies under it),
``subject`` (str), ``sequence`` (str), ``frame`` (int), one ``AUxx`` column per AU (nullable Int8
0/1, null = unknown) and optional ``AUxx_intensity`` (float). Free-form metadata (source,
``synthetic``, ``aligned``) is stored in the Parquet schema metadata under ``hiva``;
``read_manifest`` puts it in ``df.attrs["hiva"]``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pandas as pd

from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.runtime import atomic_write

REQUIRED = ("path", "subject", "sequence", "frame")
_AU_RE = re.compile(r"^AU(\d{2,3})$")


def manifest_aus(df: pd.DataFrame) -> tuple[int, ...]:
    """AU numbers that have an occurrence column in ``df``, sorted."""
    return tuple(sorted(int(m.group(1)) for c in df.columns if (m := _AU_RE.match(str(c)))))


def _shown(v) -> str:
    """A cell as a user wrote it: 3 (not np.float64(3.0)), 1.5, 'yes'."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v)


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Cast to the manifest dtypes (str ids, int frame, Int8 labels, float intensities)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise HivaError(
            f"manifest lacks column(s) {', '.join(missing)}; a manifest needs "
            f"{', '.join(REQUIRED)} and AUxx columns (e.g. AU01)"
        )
    out = df.copy()
    for col, why in (("path", "its image"), ("subject", "its subject (folds split by subject)")):
        empty = out[col].isna() | (out[col].astype(str).str.strip() == "")
        if empty.any():
            raise HivaError(f"column {col} is empty in {int(empty.sum())} of {len(out)} rows "
                            f"(e.g. row {int(empty.argmax())}); every row needs {why}")
    out["path"] = out["path"].astype(str)
    out["subject"] = out["subject"].astype(str)
    out["sequence"] = out["sequence"].fillna("").astype(str)
    frame = pd.to_numeric(out["frame"], errors="coerce")
    bad = frame.isna() | (frame != frame.round())
    if bad.any():
        raise HivaError(f"column frame holds values that are not whole numbers (e.g. "
                        f"{_shown(out['frame'][bad].iloc[0])}); write each row's frame index")
    out["frame"] = frame.astype("int64")
    for n in manifest_aus(out):
        col = au_column(n)
        vals = pd.to_numeric(out[col], errors="coerce")
        # a value given (not null, not blank) that is not 0 or 1: "yes", 3, -1 is refused,
        # never read as unknown
        given = out[col].notna() & (out[col].astype(str).str.strip() != "")
        bad = given & ~vals.isin([0, 1])
        if bad.any():
            raise HivaError(
                f"column {col} holds values other than 0/1/null (e.g. "
                f"{_shown(out[col][bad].iloc[0])}); map unknowns to null and positives to 1 "
                "before writing"
            )
        out[col] = vals.astype("Int8")
        icol = f"{col}_intensity"
        if icol in out.columns:
            out[icol] = pd.to_numeric(out[icol], errors="coerce").astype("float32")
    return out


def write_manifest(df: pd.DataFrame, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``df`` as a manifest. Absolute image paths under the manifest's folder are stored
    relative to it so the folder can move. Written to a temp file then renamed (no half files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = normalize(df)
    if len(manifest_aus(out)) == 0:
        raise HivaError("manifest has no AU columns (AU01, AU02, ...); add at least one")
    root = path.parent.resolve()

    def rel(p: str) -> str:
        q = Path(p)
        if q.is_absolute():
            try:
                return q.resolve().relative_to(root).as_posix()
            except ValueError:
                return str(q)
        return p

    out["path"] = [rel(p) for p in out["path"]]
    table = pa.Table.from_pandas(out.reset_index(drop=True), preserve_index=False)
    md = dict(table.schema.metadata or {})
    md[b"hiva"] = json.dumps(meta or {}).encode()
    table = table.replace_schema_metadata(md)
    atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def manifest_meta(path: str | Path) -> dict:
    """The ``hiva`` metadata dict stored in a manifest (``{}`` when none)."""
    import pyarrow.parquet as pq

    md = pq.read_schema(path).metadata or {}
    raw = md.get(b"hiva")
    return json.loads(raw) if raw else {}


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest; image paths come back absolute; the schema is checked."""
    path = Path(path)
    if not path.is_file():
        raise HivaError(
            f"manifest {path} does not exist; build one with `hiva data import` or "
            "`hiva data synth`"
        )
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise HivaError(f"{path} is not a readable Parquet manifest ({type(e).__name__}); "
                        "rebuild it with `hiva data import`") from None
    df = normalize(df)
    if not manifest_aus(df):
        raise HivaError(f"manifest {path} has no AU columns (AU01, ...); rebuild it")
    root = path.parent.resolve()
    for col in ("path", "pack_file"):  # pack_file: the shard of a pack's frame (data pack)
        if col in df.columns:
            df[col] = [p if os.path.isabs(p) else str(root / p) for p in df[col].astype(str)]
    try:
        df.attrs["hiva"] = manifest_meta(path)
    except (ValueError, OSError):  # metadata not JSON: provenance only
        df.attrs["hiva"] = {}
    return df


def _meta_of(source) -> dict:
    if isinstance(source, pd.DataFrame):
        return dict(source.attrs.get("hiva") or {})
    if isinstance(source, dict):
        return source
    return manifest_meta(source)


def face_framing(source) -> str:
    """How the faces of a manifest are framed: ``"aligned"`` (crops written by ``hiva data
    align``), ``"synthetic"`` (``hiva data synth``: rendered, face centred by construction) or
    ``"unaligned"`` (anything else: raw frames). ``source``: a DataFrame from ``read_manifest``
    (its ``attrs["hiva"]``), a metadata dict, or a manifest path."""
    meta = _meta_of(source)
    if meta.get("aligned"):
        return "aligned"
    if meta.get("synthetic"):
        return "synthetic"
    return "unaligned"


def warn_if_unaligned(source, echo=None) -> str | None:
    """Print ONE warning line (to stderr, or through ``echo``) when ``source`` (see
    ``face_framing``) holds unaligned faces; return the line, or None when aligned/synthetic."""
    if face_framing(source) != "unaligned":
        return None
    line = ("warning: faces are not aligned (whole frames are padded to a square and resized, so "
            "faces are small and placed anywhere); run `hiva data align MANIFEST --out DIR` and "
            "train on DIR/manifest.parquet")
    if echo is None:
        print(line, file=sys.stderr, flush=True)
    else:
        echo(line)
    return line
