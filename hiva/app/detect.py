"""The Detect tab's work, without Gradio: score the faces of one image with their maps, or a short
video as the table ``hiva predict`` writes, and draw the charts.

``DetectView`` holds one ``hiva.Detector``. ``image(rgb)`` → one ``FaceResult`` per face
(largest first): the face the model saw, its probabilities against the thresholds, each AU's
activation map over the face with its region outline (``hiva.predict.explain.explain_face``) and
the descriptions it drew on. ``video(path, out_dir)`` → the CSV of ``Detector.detect`` (the rows
``hiva predict`` writes) and its table, refused past ``max_video_seconds``; ``timeline`` draws
one person (``track_id``) of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.data.align import LANDMARK_SCHEME
from hiva.errors import HivaError
from hiva.facs import AUS, au_column
from hiva.predict.detector import Detector
from hiva.predict.explain import explain_face, overlay_image
from hiva.predict.media import as_frames, video_seconds
from hiva.predict.table import read_table, write_table


@dataclass
class FaceResult:
    face_id: int
    confidence: float  # the face detector's score (NaN: the whole frame, no alignment)
    box: tuple  # x, y, w, h in the image's pixels (NaN without alignment)
    maps: object  # hiva.predict.explain.FaceMaps

    def overlays(self) -> list[tuple[np.ndarray, str]]:
        """(image, caption) per AU: its map over the face, the outline of its region."""
        fm = self.maps
        out = []
        for i, a in enumerate(fm.aus):
            name = AUS[a].name if a in AUS else ""
            cap = f"{au_column(a)} {name}: p = {fm.probs[i]:.2f} ({'on' if fm.on[i] else 'off'})"
            if fm.scores is not None and np.isfinite(fm.scores[0][i]):
                cap += (f", {fm.scores[0][i]:.0%} of the map in its region (chance "
                        f"{fm.scores[2][i]:.0%})")
            out.append((overlay_image(fm, i), cap))
        return out

    def table(self):
        """One row per AU: probability, threshold, on/off, and the descriptions the model drew
        on (DDCA attention weight)."""
        import pandas as pd

        fm = self.maps
        rows = []
        for i, a in enumerate(fm.aus):
            rows.append({"AU": au_column(a), "name": AUS[a].name if a in AUS else "",
                         "probability": round(float(fm.probs[i]), 3),
                         "threshold": round(float(fm.thresholds[i]), 3),
                         "on": bool(fm.on[i]),
                         "descriptions it drew on": " | ".join(
                             f"{w:.2f} {t}" for w, t in fm.matches.get(a, []))})
        return pd.DataFrame(rows)


class DetectView:
    """A loaded checkpoint ready for the page. ``align`` None follows the training data;
    ``max_faces`` faces per image (largest first); videos longer than ``max_video_seconds`` are
    refused and a video is scored every ``skip_frames``-th frame."""

    def __init__(self, checkpoint, *, device: str = "auto", align: bool | None = None,
                 max_faces: int = 4, max_video_seconds: float = 60.0, skip_frames: int = 1,
                 top_k: int = 3, fold: int | None = None):
        self.det = Detector(checkpoint, fold=fold, device=device, align=align,
                            max_faces=max_faces)
        self.max_video_seconds = max_video_seconds
        self.skip_frames = max(1, int(skip_frames))
        self.top_k = top_k

    @property
    def aus(self) -> tuple[int, ...]:
        return self.det.aus

    def describe(self) -> str:
        return self.det.describe()

    def image(self, rgb) -> list[FaceResult]:
        """Every face of ``rgb`` (H×W×3 uint8, or anything ``hiva.predict.media.as_frames``
        takes as one frame) explained; ``[]`` when aligning finds no face."""
        if rgb is None:
            raise HivaError("no image given; upload a photo or take a webcam snapshot")
        frames = as_frames(rgb, "the image")
        if len(frames) != 1:
            raise HivaError("pass one image here; a clip goes in the video box")
        out = []
        for k, (face, conf, box, points) in enumerate(self.det.faces(frames[0], landmarks=True)):
            scheme = LANDMARK_SCHEME if points is not None else None
            fm = explain_face(self.det, face, points, scheme, self.top_k)
            out.append(FaceResult(k, conf, box, fm))
        return out

    def check_video(self, path) -> float | None:
        """The video's length in seconds; a HivaError past ``max_video_seconds``."""
        if path is None:
            raise HivaError("no video given; upload a short clip (mp4, webm, mov, avi)")
        secs = video_seconds(str(path))
        if secs is not None and secs > self.max_video_seconds:
            raise HivaError(f"the video is {secs:.0f} s long and this page scores at most "
                            f"{self.max_video_seconds:.0f} s; cut it shorter, or run `hiva "
                            "predict` on it for any length")
        return secs

    def video(self, path, out_dir, fmt: str = "hiva"):
        """(CSV path, table) of ``path``: the rows ``hiva predict`` writes for it."""
        self.check_video(path)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        csv = out_dir / f"{Path(path).stem}_aus.csv"
        self.det.detect([str(path)], skip_frames=self.skip_frames, save=csv, format=fmt)
        if self.det.unreadable:
            raise HivaError(f"the video could not be read ({self.det.unreadable[0][1]}); upload "
                            "an mp4, webm, mov or avi file")
        df = read_table(csv)
        if "input" in df:  # the upload's name, not the server's temporary path
            df["input"] = Path(path).name
            write_table(df, csv)
        return csv, df


def bar_chart(face: FaceResult, title: str = ""):
    """Horizontal bars of each AU's probability, the threshold of each marked; on AUs filled.
    A ``matplotlib.figure.Figure`` outside pyplot, so a long-running page does not pile up open
    figures (so is ``timeline``'s)."""
    from matplotlib.figure import Figure

    fm = face.maps
    n = len(fm.aus)
    labels = [f"{au_column(a)} {AUS[a].name if a in AUS else ''}" for a in fm.aus]
    fig = Figure(figsize=(6.4, 0.32 * n + 1.0))
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    ax.barh(y, fm.probs, color=["tab:red" if on else "tab:gray" for on in fm.on], height=0.7)
    ax.scatter(fm.thresholds, y, marker="|", s=260, color="black", zorder=3)
    for yi, p in zip(y, fm.probs):
        ax.text(min(p + 0.01, 0.93), yi, f"{p:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability (black tick: the AU's threshold; red: on)")
    ax.set_title(title or f"face {face.face_id}", fontsize=10)
    fig.tight_layout()
    return fig


def video_tracks(df) -> list[tuple[int, int]]:
    """(track_id, frames it is in) of a video's table, the longest track first (ties: lower id
    first); ``[]`` when no face was found."""
    if "track_id" not in df:
        return []
    d = df[(df["success"] == 1) & (df["track_id"] >= 0)]
    n = d.groupby("track_id")["frame"].nunique()
    return sorted(((int(t), int(k)) for t, k in n.items()), key=lambda tk: (-tk[1], tk[0]))


def timeline(df, aus, thresholds, track_id: int | None = None):
    """One small panel per AU: its probability over the video for one person (track
    ``track_id``; None: the longest track, ``video_tracks``) with its threshold dashed and the
    frames where it is on shaded."""
    from matplotlib.figure import Figure

    if track_id is None:
        tracks = video_tracks(df)
        track_id = tracks[0][0] if tracks else 0
    key = "track_id" if "track_id" in df else "face_id"
    d = df[(df[key] == track_id) & (df["success"] == 1)] if key in df else df
    seen = len(d)
    # every scored frame of the video, empty where this person is not in it: the curves break
    # there instead of drawing a line across the absence
    d = df.drop_duplicates("frame")[["frame", "timestamp"]].merge(
        d.drop(columns="timestamp"), on="frame", how="left")
    t = d["timestamp"].to_numpy(float)
    x, xlabel = (t, "seconds") if len(t) and np.isfinite(t).all() else (
        d["frame"].to_numpy(float), "frame")
    n = len(aus)
    fig = Figure(figsize=(8, 0.55 * n + 0.9))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)
    for ax, a, th in zip(axes[:, 0], aus, thresholds):
        p = d[f"{au_column(a)}_p"].to_numpy(float)
        ax.plot(x, p, color="tab:blue", lw=1.2)
        ax.axhline(th, color="black", ls="--", lw=0.7)
        ax.fill_between(x, 0, 1, where=p >= th, color="tab:red", alpha=0.15, step="mid")
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_ylabel(au_column(a), rotation=0, ha="right", va="center", fontsize=8)
        name = AUS[a].name if a in AUS else ""
        ax.text(1.005, 0.5, name, transform=ax.transAxes, fontsize=7, va="center")
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(f"AU probabilities of person {track_id} (track; dashed: threshold; shaded: on)"
                 + ("" if seen else " — no face found in any frame"), fontsize=9)
    fig.tight_layout()
    return fig
