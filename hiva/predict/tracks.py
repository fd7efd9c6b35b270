"""Following a face through a video: the ``track_id`` of ``hiva predict``'s rows.

Each input is tracked on its own, its tracks numbered 0, 1, ... in the order they start (a
frame's new faces in ``face_id`` order, largest first). A ``Tracker`` sees the scored frames of
one input in order, each as its frame index and its faces' boxes (x, y, w, h in pixels, as the
table holds them), and gives each face a track:

- every live track's box is predicted at the new frame by constant velocity (its centre moved
  by its last velocity, in pixels per frame index, times the frames since it was last seen; its
  size kept);
- a face may continue a track when its box overlaps the prediction (IoU ≥ ``MIN_IOU``) or its
  centre lies within ``MAX_SHIFT`` face sizes (the square root of the box's area) of the
  predicted centre; among those pairs, one assignment of least total cost ``(1 - IoU) + centre
  distance in face sizes`` (the Hungarian method, ``scipy.optimize.linear_sum_assignment``);
- a face left over starts a new track;
- a track missing from more than ``gap`` scored frames of the input in a row ends: a face that
  comes back after that gets a new id. Up to ``gap`` missing frames (a face hidden by another
  as they cross, a frame where detection missed it), it keeps its id.

The result is a pure function of the (frame, boxes) sequence, so a resumed ``hiva predict``
rebuilds a tracker by replaying the rows it already wrote (``replay``) and goes on with the
same ids. An image is an input of one frame: its faces' track ids equal their face ids. A face
without a box (no alignment: the whole frame is the face) is track 0 in every frame; a frame
without a face has no track (``NO_TRACK``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hiva.predict.settings import TRACK_GAP
from hiva.predict.table import BOX_COLUMNS

MIN_IOU = 0.1  # predicted and found boxes overlapping at least this much may match
MAX_SHIFT = 0.5  # ... or centres at most this many face sizes apart
NO_TRACK = -1  # the track_id of a frame without a face
_NO = 1e6  # cost of a pair that may not match


@dataclass
class _Track:
    id: int
    box: np.ndarray  # cx, cy, w, h when last seen
    frame: int  # frame index when last seen
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre px per frame
    seen: int = 1  # frames matched
    missed: int = 0  # scored frames missing since last seen


def _centre(box) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2, y + h / 2, w, h])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (cx, cy, w, h) boxes."""
    ix = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    iy = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    inter = max(ix, 0.0) * max(iy, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    """Track ids for the faces of one input's scored frames, fed in order (module docstring)."""

    def __init__(self, gap: int = TRACK_GAP):
        self.gap = gap
        self.tracks: list[_Track] = []
        self.next_id = 0

    def update(self, frame: int, boxes) -> list[int]:
        """The track id of each of a frame's faces (``boxes``: x, y, w, h each, in face_id
        order; ``[]`` for a frame without a face, which still counts as a frame missed)."""
        boxes = [tuple(b) for b in boxes]
        if any(not all(math.isfinite(float(v)) for v in b) for b in boxes):
            return list(range(len(boxes)))  # whole frames: no box to follow
        found = [_centre(b) for b in boxes]
        pred = [self._predict(t, frame) for t in self.tracks]
        ids: list[int | None] = [None] * len(found)
        if found and pred:
            from scipy.optimize import linear_sum_assignment

            cost = np.array([[_cost(p, f) for f in found] for p in pred])
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] < _NO:
                    self._see(self.tracks[r], found[c], frame)
                    ids[c] = self.tracks[r].id
        matched = set(ids)
        for t in self.tracks:
            if t.id not in matched:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.gap]
        for k, f in enumerate(found):
            if ids[k] is None:
                self.tracks.append(_Track(self.next_id, f, frame))
                ids[k] = self.next_id
                self.next_id += 1
        return ids

    @staticmethod
    def _predict(t: _Track, frame: int) -> np.ndarray:
        p = t.box.copy()
        p[:2] += t.velocity * (frame - t.frame)
        return p

    @staticmethod
    def _see(t: _Track, box: np.ndarray, frame: int) -> None:
        step = (box[:2] - t.box[:2]) / max(frame - t.frame, 1)
        # the first step sets the velocity; later ones are averaged with it (detector jitter)
        t.velocity = step if t.seen == 1 else 0.5 * (t.velocity + step)
        t.box, t.frame, t.seen, t.missed = box, frame, t.seen + 1, 0


def _cost(pred: np.ndarray, found: np.ndarray) -> float:
    iou = _iou(pred, found)
    size = math.sqrt(max(pred[2] * pred[3], 1e-9))
    shift = float(np.hypot(*(pred[:2] - found[:2]))) / size
    if iou < MIN_IOU and shift > MAX_SHIFT:
        return _NO
    return (1.0 - iou) + shift


def track_ids(frames, boxes, gap: int = TRACK_GAP) -> list[list[int]]:
    """Track ids of one input's faces: ``frames`` the scored frame indices in order, ``boxes``
    each frame's list of face boxes (x, y, w, h; ``[]`` without a face)."""
    t = Tracker(gap)
    return [t.update(f, b) for f, b in zip(frames, boxes)]


class Tracks:
    """One ``Tracker`` per input of a stream, by the input's place among the inputs; a tracker
    is made on the input's first frame, or rebuilt from rows already written (``replay``)."""

    def __init__(self, gap: int = TRACK_GAP):
        self.gap = gap
        self.index: int | None = None
        self.tracker: Tracker | None = None

    def update(self, index: int, frame: int, boxes) -> list[int]:
        if index != self.index:
            self.index, self.tracker = index, Tracker(self.gap)
        return self.tracker.update(frame, boxes)

    def replay(self, index: int, df) -> None:
        """Continue input ``index`` after the rows ``df`` (hiva layout, that input's rows so
        far, in order): the tracker they were written with, rebuilt."""
        self.index, self.tracker = index, Tracker(self.gap)
        for frame, rows in df.groupby("frame", sort=False):
            faces = rows[rows["success"] == 1]
            self.tracker.update(int(frame), faces[list(BOX_COLUMNS)].to_numpy(float).tolist())
