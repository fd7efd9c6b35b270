"""Reading what ``hiva predict`` is given: image files, folders of them, videos, and frames
already in memory (numpy arrays, PIL images: ``hiva.Detector.detect``).

Reads images with Pillow (EXIF orientation applied) and videos with PyAV, every frame, in decode
order. A video frame's timestamp is its presentation time (``pts × time_base``) minus the stream's
start time, so it is right for variable frame rates and streams that do not start at 0. Writes
nothing. A file that cannot be read is reported through ``Unreadable`` and skipped; a path that
does not exist is a ``HivaError`` before any work starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hiva.data.image_files import as_rgb
from hiva.errors import HivaError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif",
                        ".ppm", ".pgm"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                        ".wmv", ".flv", ".mts", ".m2ts", ".3gp", ".ogv"})


@dataclass(frozen=True)
class Source:
    """One file to read: ``kind`` is image, video, or unknown (an explicit file with another
    extension: tried as an image, then as a video); or ``array``: frames in memory (``data``,
    T×H×W×3 uint8 RGB; ``path`` is ``<array i>``, i its place among the inputs)."""

    path: str
    kind: str
    data: object = field(default=None, compare=False, repr=False)


@dataclass
class Frame:
    source: str
    frame: int
    timestamp: float
    rgb: np.ndarray  # H×W×3 uint8


class Unreadable(Exception):
    """A file that exists but cannot be decoded (reason in ``str``); the caller counts it."""


def _kind(p: Path) -> str:
    ext = p.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else "unknown"


def as_frames(obj, where: str) -> np.ndarray:
    """An in-memory input as T×H×W×3 uint8 RGB: a PIL image, or a numpy array H×W (grey),
    H×W×3 (RGB), H×W×4 (RGBA: alpha dropped) or T×H×W×3 (frames of one clip)."""
    if hasattr(obj, "convert") and hasattr(obj, "size"):  # a PIL image
        return np.asarray(as_rgb(obj))[None]
    a = np.asarray(obj)
    if a.dtype != np.uint8:
        raise HivaError(f"{where}: an array of {a.dtype}; pass uint8 RGB pixels (0-255), e.g. "
                        "(img * 255).round().astype(numpy.uint8)")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or 0 in a.shape:
        raise HivaError(f"{where}: an array of shape {tuple(np.asarray(obj).shape)}; pass "
                        "H×W×3 RGB (a frame) or T×H×W×3 (a clip)")
    return a


def expand_inputs(inputs) -> list[Source]:
    """Files in the order given; a folder contributes its images and videos (recursively, sorted
    by path, hidden files left out); a numpy array or PIL image is frames in memory. Missing
    paths and folders without media are errors."""
    if isinstance(inputs, (str, Path, np.ndarray)) or not hasattr(inputs, "__iter__") or (
            hasattr(inputs, "convert")):  # one path, array or PIL image
        inputs = [inputs]
    out: list[Source] = []
    for i, raw in enumerate(inputs):
        if not isinstance(raw, (str, Path)):
            where = f"<array {i}>"
            out.append(Source(where, "array", as_frames(raw, f"input {i} ({where})")))
            continue
        p = Path(raw)
        if p.is_dir():
            found = [Source(str(f), _kind(f)) for f in sorted(p.rglob("*"))
                     if f.is_file() and _kind(f) != "unknown"
                     and not any(part.startswith(".") for part in f.relative_to(p).parts)]
            if not found:
                raise HivaError(f"folder {raw} holds no images or videos (looked for "
                                f"{', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))}); pass another "
                                "folder or the files themselves")
            out.extend(found)
        elif p.is_file():
            out.append(Source(str(p), _kind(p)))
        else:
            raise HivaError(f"input {raw} does not exist; pass image files, folders or videos")
    if not out:
        raise HivaError("no input given; pass image files, folders or videos")
    return out


def read_image(path: str) -> np.ndarray:
    """RGB uint8, upright (EXIF orientation applied)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(as_rgb(im))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise Unreadable(f"{type(e).__name__}: {e}") from None


def count_frames(src: Source, every: int = 1) -> int | None:
    """Frames of ``src`` that will be scored, for a progress bar (the container's count, or
    duration × rate; every ``every``-th of a video's); None when the container does not say."""
    if src.kind == "image":
        return 1
    n = len(src.data) if src.kind == "array" else _video_frames(src)
    return None if n is None else -(-n // every)


def _video_frames(src: Source) -> int | None:
    try:
        import av

        with av.open(src.path) as box:
            if not box.streams.video:
                return None
            st = box.streams.video[0]
            if st.frames:
                return int(st.frames)
            if st.duration and st.average_rate:
                return int(round(float(st.duration * st.time_base * st.average_rate)))
    except Exception:  # noqa: BLE001 — only an estimate; decoding reports the real problem
        return None
    return None


def video_seconds(path: str) -> float | None:
    """A video's length in seconds as its container states it (None when it does not say or
    the file does not open): a limit check before decoding."""
    try:
        import av

        with av.open(path) as box:
            if box.duration:
                return float(box.duration) / 1_000_000  # av.time_base: microseconds
            if box.streams.video:
                st = box.streams.video[0]
                if st.duration and st.time_base:
                    return float(st.duration * st.time_base)
    except Exception:  # noqa: BLE001 — only a limit check; decoding reports the real problem
        return None
    return None


def iter_video(path: str, every: int = 1, first: int = 0
               ) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, seconds, RGB) for every frame of the first video stream, in presentation order;
    ``every`` k: only frames 0, k, 2k, ... (the others are decoded but not converted);
    ``first``: none before that index (decoded, not converted: a resumed run).

    A file that cannot be opened raises ``Unreadable`` before any frame; a decode error part way
    raises ``Unreadable`` after the frames decoded so far (those are kept by the caller)."""
    import av

    try:
        box = av.open(path)
    except Exception as e:  # noqa: BLE001 — FFmpeg errors come in many types
        raise Unreadable(f"{type(e).__name__}: {e}") from None
    with box:
        if not box.streams.video:
            raise Unreadable("no video stream")
        st = box.streams.video[0]
        st.thread_type = "AUTO"  # frame-threaded decoding: frames still come out in order
        tb = st.time_base
        start = st.start_time
        rate = float(st.average_rate) if st.average_rate else None
        i = 0
        try:
            for fr in box.decode(st):
                if fr.pts is not None and tb is not None:
                    t = float((fr.pts - (start or 0)) * tb)
                elif rate:
                    t = i / rate
                else:
                    t = float("nan")
                if i % every == 0 and i >= first:
                    yield i, t, fr.to_ndarray(format="rgb24")
                i += 1
        except Exception as e:  # noqa: BLE001
            raise Unreadable(f"decoding stopped after {i} frames ({type(e).__name__}: {e})"
                             ) from None
        if i == 0:
            raise Unreadable("no decodable frames")


def iter_frames(src: Source, every: int = 1, start: int = 0) -> Iterator[Frame]:
    """Frames of one source (of a video or an in-memory clip, every ``every``-th, none before
    index ``start``); raises ``Unreadable`` (possibly after some frames of a video). In-memory
    frames have timestamp NaN: their rate is unknown."""
    if src.kind == "array":
        for i in range(0, len(src.data), every):
            if i >= start:
                yield Frame(src.path, i, float("nan"), src.data[i])
        return
    if src.kind == "image":
        if start == 0:
            yield Frame(src.path, 0, 0.0, read_image(src.path))
        return
    if src.kind == "unknown":
        try:
            rgb = read_image(src.path)
        except Unreadable:
            pass
        else:
            if start == 0:
                yield Frame(src.path, 0, 0.0, rgb)
            return
    for i, t, rgb in iter_video(src.path, every, first=start):
        yield Frame(src.path, i, t, rgb)
