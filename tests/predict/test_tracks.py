"""Faces followed across frames (hiva.predict.tracks): synthetic boxes, then the real ``hiva
predict`` on a rendered video of two faces that cross."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiva.predict.tracks import Tracker, Tracks, track_ids


def _crossing(n: int = 21, hide: tuple[int, ...] = ()):
    """Face A moves right and grows (it comes nearer), face B moves left, along the same row;
    they meet at the middle frame and swap sides. Each frame lists its boxes largest first, as
    face_id does: B first, then A once it has grown past B. In ``hide`` frames B is hidden
    behind A. Returns (frames, boxes, who) with who[f] the labels of frame f's boxes."""
    frames, boxes, who = [], [], []
    for f in range(n):
        a = ("A", (15.0 + 10 * f, 50.0, 36.0 + f, 36.0 + f))
        b = ("B", (210.0 - 10 * f, 50.0, 46.0, 46.0))
        faces = [a] if f in hide else sorted([a, b], key=lambda x: -x[1][2])
        frames.append(f)
        boxes.append([box for _, box in faces])
        who.append([w for w, _ in faces])
    return frames, boxes, who


def _ids_of(who, ids) -> dict[str, set[int]]:
    """The track ids given to A and to B."""
    out: dict[str, set[int]] = {"A": set(), "B": set()}
    for ws, ts in zip(who, ids):
        for w, t in zip(ws, ts):
            out[w].add(t)
    return out


def test_two_faces_that_cross_and_swap_sides_keep_their_ids():
    frames, boxes, who = _crossing()
    assert who[0] == ["B", "A"] and who[-1] == ["A", "B"]  # face_id 0 changed hands
    ids = track_ids(frames, boxes)
    assert _ids_of(who, ids) == {"A": {1}, "B": {0}}
    assert boxes[-1][1][0] < boxes[-1][0][0]  # the sides swapped: B is on the left


def test_a_face_hidden_while_they_cross_comes_back_as_itself():
    frames, boxes, who = _crossing(hide=(9, 10, 11))
    ids = track_ids(frames, boxes)
    assert _ids_of(who, ids) == {"A": {1}, "B": {0}}


def _leaves(away: int, gap: int) -> list[list[int]]:
    """One still face, gone for ``away`` frames (frames without a face) in the middle."""
    frames = list(range(10 + away + 5))
    boxes = [[] if 10 <= f < 10 + away else [(100.0, 80.0, 60.0, 60.0)] for f in frames]
    return track_ids(frames, boxes, gap=gap)


def test_a_face_that_leaves_keeps_its_id_up_to_the_gap_then_gets_a_new_one():
    assert {t for ts in _leaves(away=5, gap=5) for t in ts} == {0}
    assert [ts for ts in _leaves(away=6, gap=5) if ts][-1] == [1]
    assert {t for ts in _leaves(away=6, gap=6) for t in ts} == {0}


def test_a_frame_without_a_face_and_whole_frames():
    t = Tracker()
    assert t.update(0, []) == []
    assert t.update(1, [(0.0, 0.0, 50.0, 50.0), (200.0, 0.0, 40.0, 40.0)]) == [0, 1]
    nan = (float("nan"),) * 4  # no alignment: the whole frame is the face
    assert Tracker().update(3, [nan]) == [0]


def test_new_faces_take_the_next_ids_in_face_order():
    t = Tracker()
    assert t.update(0, [(0.0, 0.0, 50.0, 50.0)]) == [0]
    assert t.update(1, [(300.0, 0.0, 60.0, 60.0), (1.0, 0.0, 50.0, 50.0),
                        (150.0, 0.0, 40.0, 40.0)]) == [1, 0, 2]


def test_replay_rebuilds_the_tracker_from_written_rows():
    frames, boxes, _ = _crossing(hide=(9, 10, 11))
    ids = track_ids(frames, boxes)
    rows = [{"frame": f, "success": int(bool(bs)), "face_x": b[0], "face_y": b[1],
             "face_width": b[2], "face_height": b[3]}
            for f, bs in zip(frames, boxes) for b in (bs or [(np.nan,) * 4])]
    df = pd.DataFrame(rows)
    cut = 10  # resume after frame 9: the rows of frames 0..9 are replayed
    tr = Tracks()
    tr.replay(7, df[df["frame"] < cut])
    assert [tr.update(7, f, b) for f, b in zip(frames[cut:], boxes[cut:])] == ids[cut:]


@pytest.fixture(scope="module")
def crossing_video(tmp_path_factory):
    from tests.predict.helpers import two_faces_video

    return two_faces_video(tmp_path_factory.mktemp("crossing") / "cross.mp4", n=9)


def test_predict_follows_two_crossing_faces(tiny_run, crossing_video, cli, tmp_path):
    pytest.importorskip("mediapipe")
    from hiva.predict.table import read_table

    out = tmp_path / "au.csv"
    cli("predict", crossing_video, "--checkpoint", tiny_run, "--out", out, "--align",
        "--min-face", "16", "--no-progress")
    df = read_table(out)
    faces = df[df["success"] == 1]
    # MediaPipe finds both faces in most frames (as they pass each other it may miss one)
    assert (faces.groupby("frame").size() == 2).sum() >= 6 and len(df) >= 9
    assert df["track_id"].dtype == "int64" and set(faces["track_id"]) == {0, 1}
    # a track stays with one face: the upper one (A, moving right) or the lower (B, left)
    upper = faces["face_y"] < 60
    by_track = faces.groupby("track_id")
    assert (by_track.apply(lambda g: upper[g.index].nunique(), include_groups=False) == 1).all()
    a = faces[upper].sort_values("frame")["face_x"].to_numpy()
    assert a[0] < 100 < a[-1]  # and the faces did swap sides
