"""Image files hiva reads and writes. Read: ``as_rgb``, the one way a picture becomes RGB pixels
for training, feature caching and prediction alike. Written (synthetic faces, aligned crops,
grids): encoded in memory by OpenCV, then put in place by ``hiva.runtime.atomic_write``, so a
killed run leaves no half image under the final name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.runtime import atomic_write


def as_rgb(im):
    """A PIL image as 8-bit RGB, as it is meant to be seen: turned upright by its EXIF
    orientation (phone photos), 16- and 32-bit grey scaled to 8 bits (PIL's own conversion
    clips them, so a 16-bit frame read white), alpha dropped, palette and CMYK converted. The
    same for every reader, so a model trains on the pixels it is later asked to score."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        wide = im.mode.startswith("I;16") or a.max(initial=0) > 255  # else 8-bit values
        scale = 257.0 if wide else 1.0
        im = Image.fromarray(np.clip(np.rint(a / scale), 0, 255).astype(np.uint8))
    return im.convert("RGB")


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
