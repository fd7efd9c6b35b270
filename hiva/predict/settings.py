"""What ``hiva predict`` and ``hiva.Detector`` accept, checked in one place: ``PredictConfig``
(the CLI's settings) and the rules it shares with ``Detector`` and ``Detector.detect``
(``detect_checks``), named as flags for the CLI and as arguments for Python."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hiva.errors import HivaError
from hiva.predict.table import FORMATS, OUT_SUFFIXES


def detect_checks(cli: bool, *, batch_size: int = 1, max_faces: int | None = None,
                  skip_frames: int = 1, format: str = "hiva", out=None) -> list[tuple[bool, str]]:
    """``(holds, what must hold)`` for the settings of a detection; ``cli`` names them as
    ``hiva predict``'s flags (``--batch-size``), else as ``Detector``'s arguments."""
    def name(flag: str) -> str:
        return f"--{flag}" if cli else flag.replace("-", "_")

    return [
        (batch_size >= 1, f"{name('batch-size')} must be ≥ 1, got {batch_size}"),
        (max_faces is None or max_faces >= 1,
         f"{name('max-faces')} must be ≥ 1 (or none: every face), got {max_faces}"),
        (skip_frames >= 1, f"{name('skip-frames')} must be ≥ 1, got {skip_frames}"),
        (format in FORMATS, f"{name('format')} {format!r}: use one of {', '.join(FORMATS)}"),
        (out is None or Path(out).suffix.lower() in OUT_SUFFIXES,
         f"{'--out ' if cli else 'save='}{out}: end it in .csv or .parquet"),
    ]


def check(checks: list[tuple[bool, str]]) -> None:
    """The first rule that fails, as one ``HivaError`` line (the Python API's form)."""
    for ok, msg in checks:
        if not ok:
            raise HivaError(msg)


def threshold_ok(value) -> bool:
    if value == "auto":
        return True
    try:
        return 0.0 < float(value) < 1.0
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

    def __post_init__(self) -> None:
        from hiva.config import check_config

        check_config("predict", [
            (len(self.inputs) > 0, "give at least one image, folder or video"),
            (bool(self.checkpoint), "--checkpoint names the run folder, export folder or Hub "
             "id (OWNER/NAME) to use"),
            *detect_checks(True, batch_size=self.batch_size, max_faces=self.max_faces,
                           skip_frames=self.skip_frames, format=self.format, out=self.out),
            (self.weights in ("best", "last"), f"--weights {self.weights!r}: use best or last"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"--device {self.device!r}: use auto, cpu, cuda or cuda:N"),
            (self.fold is None or self.fold >= 1, f"--fold must be ≥ 1, got {self.fold}"),
            (self.model_threads is None or self.model_threads >= 1,
             f"--model-threads must be ≥ 1, got {self.model_threads}"),
            (threshold_ok(self.threshold),
             f"--threshold {self.threshold!r}: pass auto or a number in (0, 1)"),
        ])
