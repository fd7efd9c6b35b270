"""Image files that hiva writes (synthetic faces, aligned crops, grids): encoded in memory by
OpenCV, then put in place by ``hiva.runtime.atomic_write``, so a killed run leaves no half image
under the final name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.runtime import atomic_write


def write_image(path: str | Path, rgb: np.ndarray, jpeg_quality: int | None = None) -> Path:
    """Write the RGB uint8 image ``rgb`` to ``path`` in the format its suffix names (``.jpg``,
    ``.png``, ...); ``jpeg_quality`` (1-100) for JPEG, else OpenCV's default."""
    import cv2

    path = Path(path)
    params = [] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(path.suffix, rgb[..., ::-1], params)
    if not ok:
        raise HivaError(f"OpenCV could not encode {path.name}; write a .jpg or .png")
    atomic_write(path, lambda p: p.write_bytes(buf.tobytes()))
    return path
