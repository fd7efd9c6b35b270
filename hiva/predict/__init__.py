"""Inference on images and videos: ``hiva predict``, ``hiva explain``, ``hiva export`` and
``hiva.Detector``. Importing this package is light; torch and mediapipe load on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real import waits for first use (``__getattr__``)
    from hiva.predict.detector import Detector

__all__ = ["Detector"]


def __getattr__(name: str):
    if name == "Detector":
        from hiva.predict.detector import Detector

        return Detector
    raise AttributeError(f"module 'hiva.predict' has no attribute {name!r}")
