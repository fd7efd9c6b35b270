"""Output folders: fail in one line, before any work, when ``--out``/``--to`` cannot take the
output (it is a file, or the folder cannot be created or written)."""

from __future__ import annotations

import os
from pathlib import Path

from hiva.errors import HivaError


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def require_dir_path(path: str | Path, flag: str = "--out") -> Path:
    """``path`` must be a folder or not exist yet (nothing is created)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise HivaError(f"{flag} {p} is a file, not a folder; pass a folder path (a new one is "
                        "made)")
    return p


def writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` (and its parents) if needed and check that files can be written in it."""
    p = require_dir_path(path, flag)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HivaError(f"cannot create {flag} {p} ({_reason(e)}); pass a folder you can write "
                        "to") from None
    probe = p / f".hiva-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HivaError(f"cannot write into {flag} {p} ({_reason(e)}); pass a folder you can "
                        "write to, or make it writable") from None
    return p
