"""What ``hiva predict`` and ``hiva.Detector`` accept, checked in one place: ``PredictConfig``
(the CLI's settings) and the rules it shares with ``Detector``, ``Detector.detect``, the loader
and ``hiva app`` (``detect_checks``), named as flags for the CLI and as arguments for Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hiva.config import check_config, count_rule
from hiva.errors import HivaError
from hiva.predict.table import FORMATS, OUT_SUFFIXES
from hiva.runs import weights_rule

# The smallest face scored, in pixels a side (``--min-face``): a smaller one (a thumbnail, a
# 1×1 image, a face far in the background) is upscaled into noise, so it is skipped and
# counted. A face (a whole frame without alignment) more than MAX_ASPECT times as long as it
# is wide, or the other way round, is a strip, not a face.
MIN_FACE = 32
MAX_ASPECT = 4.0
# Scored frames of a video a face may be missing from and keep its ``track_id`` (``--track-gap``;
# ``hiva.predict.tracks``): about half a second at 30 frames/s.
TRACK_GAP = 15


def too_small(width: float, height: float, min_face: int = MIN_FACE) -> str | None:
    """Why a face (or whole frame) of ``width`` × ``height`` pixels is not scored; None if it
    is."""
    if min(width, height) < min_face:
        return f"{width:.0f}×{height:.0f} px, under --min-face {min_face}"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return f"{width:.0f}×{height:.0f} px, a strip (sides differ more than {MAX_ASPECT:.0f}×)"
    return None


def detect_checks(cli: bool, *, batch_size: int = 1, max_faces: int | None = None,
                  skip_frames: int = 1, format: str = "hiva", out=None, weights: str = "best",
                  threshold="auto", min_face: int = 1, track_gap: int = 0
                  ) -> list[tuple[bool, str]]:
    """``(holds, what must hold)`` for the settings of a detection; ``cli`` names them as
    ``hiva predict``'s flags (``--batch-size``), else as ``Detector``'s arguments."""
    def name(flag: str) -> str:
        return f"--{flag}" if cli else flag.replace("-", "_")

    return [
        count_rule(name("batch-size"), batch_size),
        count_rule(name("max-faces"), max_faces, none="every face"),
        count_rule(name("skip-frames"), skip_frames),
        count_rule(name("min-face"), min_face),
        count_rule(name("track-gap"), track_gap, low=0),
        (format in FORMATS, f"{name('format')} {format!r}: use one of {', '.join(FORMATS)}"),
        (out is None or Path(out).suffix.lower() in OUT_SUFFIXES,
         f"{'--out ' if cli else 'save='}{out}: end it in .csv or .parquet"),
        weights_rule(weights, name("weights")),
        (_threshold_ok(threshold),
         f"{name('threshold')} {threshold!r}: pass auto or a number in (0, 1)"),
    ]


def check(checks: list[tuple[bool, str]]) -> None:
    """The first rule that fails, as one ``HivaError`` line (the Python API's form)."""
    for ok, msg in checks:
        if not ok:
            raise HivaError(msg)


def _threshold_ok(value) -> bool:
    """A decision threshold: ``auto`` or a number in (0, 1)."""
    try:
        return value == "auto" or 0.0 < float(value) < 1.0
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class PredictConfig:
    """What ``hiva predict`` runs; ``align`` None = as the model was trained."""

    inputs: tuple[str, ...]
    checkpoint: str
    out: str
    batch_size: int = 16
    device: str = "auto"
    align: bool | None = None
    fold: int | None = None
    threshold: str = "auto"
    text_bank: str | None = None
    weights: str = "best"
    progress: bool = True
    model_threads: int | None = None
    format: str = "hiva"
    max_faces: int | None = None
    skip_frames: int = 1
    min_face: int = MIN_FACE
    track_gap: int = TRACK_GAP
    restart: bool = False

    def __post_init__(self) -> None:
        check_config("predict", [
            (len(self.inputs) > 0, "give at least one image, folder or video"),
            (bool(self.checkpoint), "--checkpoint names the run folder, export folder or Hub "
             "id (OWNER/NAME) to use"),
            *detect_checks(True, batch_size=self.batch_size, max_faces=self.max_faces,
                           skip_frames=self.skip_frames, format=self.format, out=self.out,
                           weights=self.weights, threshold=self.threshold,
                           min_face=self.min_face, track_gap=self.track_gap),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"--device {self.device!r}: use auto, cpu, cuda or cuda:N"),
            (self.fold is None or self.fold >= 1, f"--fold must be ≥ 1, got {self.fold}"),
            (self.model_threads is None or self.model_threads >= 1,
             f"--model-threads must be ≥ 1, got {self.model_threads}"),
        ])
