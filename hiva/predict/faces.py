"""Finding the faces ``hiva predict`` scores: MediaPipe detection and alignment (the same as
``hiva data align``), quietened, or the whole frame as one face when the model was trained on
whole frames."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from hiva.data.align import FaceAligner
from hiva.predict.settings import MIN_FACE, too_small

NO_BOX = (float("nan"),) * 4


def quiet_mediapipe() -> None:
    """MediaPipe/TFLite print C++ INFO lines and a protobuf deprecation warning on first use;
    keep them off a user's terminal (real errors still raise)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype.*")


class _native_stderr_silenced:
    """Point file descriptor 2 at /dev/null while MediaPipe starts: its C++ (TFLite, absl) writes
    INFO lines there that no logging setting reaches. Python exceptions are unaffected."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        except OSError:  # no real fd 2 (embedded interpreters): leave it alone
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


class FaceFinder:
    """The faces of a frame as the model should see them: aligned crops (``align``) or the whole
    frame; at most ``max_faces`` (the largest; None: every face). MediaPipe loads on first use."""

    def __init__(self, align: bool, max_faces: int | None = None, min_face: int = MIN_FACE):
        self.align = align
        self.max_faces = max_faces
        self.min_face = min_face
        self.last_skip: str | None = None  # why the last frame's face(s) were skipped
        self.reset()
        self._aligner = None

    def reset(self) -> None:
        """Start counting again: ``skipped`` faces too small or thin to score (``too_small``),
        ``first_skip`` why the first of them was."""
        self.skipped = 0
        self.first_skip: str | None = None

    def _fits(self, width: float, height: float) -> bool:
        why = too_small(width, height, self.min_face)
        if why is not None:
            self.skipped += 1
            self.last_skip = why
            self.first_skip = self.first_skip or why
        return why is None

    def aligner(self, landmarks: bool = False):
        """The face aligner; ``landmarks=True`` one that also runs the face mesh (it doubles the
        cost per face, so prediction leaves it out)."""
        if self._aligner is None or (landmarks and not self._aligner.landmarks):
            quiet_mediapipe()

            with _native_stderr_silenced():
                aligner = FaceAligner(size=256, landmarks=landmarks)
                probe = np.zeros((64, 64, 3), np.uint8)
                aligner.detect(probe)  # TFLite logs on its first run
                if landmarks:
                    aligner.mesh(probe, (0, 0, 64, 64))
            self._aligner = aligner
        return self._aligner

    def prepare(self, rgb: np.ndarray, landmarks: bool = False):
        """(face image the model sees before its transform, detection confidence); (None, 0.0)
        when aligning finds no face, or the face (the frame without alignment) is too small or
        thin to score (``too_small``: why in ``last_skip``); confidence NaN without alignment.
        ``landmarks=True`` adds the aligner's face-mesh landmarks in the face image's pixels
        (None without alignment or when the mesh found none)."""
        self.last_skip = None
        if not self.align:
            if not self._fits(rgb.shape[1], rgb.shape[0]):
                return (None, 0.0, None) if landmarks else (None, 0.0)
            return (rgb, float("nan"), None) if landmarks else (rgb, float("nan"))
        crop, info = self.aligner(landmarks)(rgb)
        if crop is not None and not self._fits(*info["box"][2:4]):
            crop = None
        if crop is None:
            return (None, 0.0, None) if landmarks else (None, 0.0)
        if landmarks:
            return crop, float(info["score"]), info.get("landmarks")
        return crop, float(info["score"])

    def faces(self, rgb: np.ndarray, landmarks: bool = False) -> list[tuple]:
        """Every face of a frame to score, largest first (at most ``max_faces``): (face image
        before the model's transform, detection confidence, box x, y, w, h in the frame's
        pixels); ``[]`` when aligning finds none. Without alignment the whole frame is one face
        (confidence and box NaN). A face too small or thin to score (``too_small``) is left
        out and counted in ``skipped``. ``landmarks=True`` appends the face mesh's points in the
        face image's pixels to each tuple (None without alignment or when the mesh missed)."""
        self.last_skip = None
        if not self.align:
            if not self._fits(rgb.shape[1], rgb.shape[0]):
                return []
            return [(rgb, float("nan"), NO_BOX) + ((None,) if landmarks else ())]
        return [(crop, float(info["score"]), tuple(float(v) for v in info["box"]))
                + ((info.get("landmarks"),) if landmarks else ())
                for crop, info in self.aligner(landmarks).align_all(rgb, self.max_faces)
                if self._fits(*info["box"][2:4])]
