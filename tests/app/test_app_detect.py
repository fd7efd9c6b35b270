"""The functions behind the Detect and Model tabs, and the page's handling of what fails to load,
on the tiny trained run (no browser)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hiva.errors import HivaError
from tests.predict.helpers import TINY_AUS, astronaut, write_video


@pytest.fixture(scope="module")
def view(tiny_run):
    from hiva.app.detect import DetectView

    return DetectView(tiny_run, device="cpu", max_video_seconds=2.0)


def test_image_whole_frame_maps_and_table(view):
    """The synthetic-trained run scores the whole frame: one face, a map per AU over the face the
    model saw, probabilities equal to the detector's own on the same frame."""
    from hiva.predict.table import prob_columns

    rgb = astronaut()
    res = view.image(rgb)
    assert len(res) == 1
    r = res[0]
    fm = r.maps
    assert fm.aus == TINY_AUS and np.isnan(r.confidence)
    side = fm.face.shape[0]
    assert fm.maps.shape == (len(TINY_AUS), side, side)
    assert np.allclose(fm.maps.reshape(len(TINY_AUS), -1).max(1), 1.0)  # each scaled to its max
    assert np.allclose(fm.cells.reshape(len(TINY_AUS), -1).sum(1), 1.0, atol=1e-4)
    df = view.det.detect([rgb])
    assert np.allclose(df[prob_columns(view.det.outputs)].to_numpy(float)[0], fm.probs,
                       atol=1e-5)
    overlays = r.overlays()
    assert [c.split()[0] for _, c in overlays] == [f"AU{a:02d}" for a in TINY_AUS]
    img, _ = overlays[0]
    assert img.dtype == np.uint8 and img.shape == (side, side, 3)
    # the overlay is the face blended with the map, not the face alone
    assert np.abs(img / 255.0 - fm.face).mean() > 0.05
    tab = r.table()
    assert list(tab["AU"]) == [f"AU{a:02d}" for a in TINY_AUS]
    assert (tab["on"] == (tab["probability"] >= tab["threshold"])).all()
    # the tiny bank's texts: each AU drew on descriptions of its own AU
    for a, drew in zip(TINY_AUS, tab["descriptions it drew on"]):
        assert f"AU{a} description number" in drew


@pytest.mark.gpu
def test_image_on_cuda_matches_cpu(view, tiny_run):
    """The page's model on CUDA (``make test-gpu``): the same maps and probabilities as on the
    CPU, and the overlays drawn from them."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from hiva.app.detect import DetectView

    g = DetectView(tiny_run, device="cuda")
    assert g.det.loaded.device.type == "cuda"
    r, c = g.image(astronaut())[0], view.image(astronaut())[0]
    np.testing.assert_allclose(r.maps.probs, c.maps.probs, atol=5e-3)
    np.testing.assert_allclose(r.maps.cells, c.maps.cells, atol=5e-3)
    assert [o.shape for o, _ in r.overlays()] == [o.shape for o, _ in c.overlays()]


def test_image_aligned_faces_have_scored_regions(tiny_run):
    """Aligned: the astronaut's face is found, its box lies in the photo, and with the face
    mesh's landmarks each AU's map is scored against its region and outlined."""
    from hiva.app.detect import DetectView

    v = DetectView(tiny_run, device="cpu", align=True)
    rgb = astronaut()
    res = v.image(rgb)
    assert len(res) == 1
    r = res[0]
    x, y, w, h = r.box
    assert 0 <= x < x + w <= rgb.shape[1] and 0 <= y < y + h <= rgb.shape[0]
    assert 0.5 < r.confidence <= 1.0
    assert r.maps.scores is not None
    energy, _, chance, _ = r.maps.scores
    assert np.isfinite(energy).all() and ((0 <= energy) & (energy <= 1)).all()
    assert all(m is not None and m.any() for m in r.maps.outlines)
    # the outline is drawn in white over the map
    img, cap = r.overlays()[0]
    assert (img == 255).all(axis=-1).any() and "of the map in its region" in cap
    assert v.image(np.full((200, 200, 3), 128, np.uint8)) == []  # no face: no results


def test_image_bad_input(view):
    with pytest.raises(HivaError, match="no image given"):
        view.image(None)
    with pytest.raises(HivaError, match="one image"):
        view.image(np.zeros((2, 32, 32, 3), np.uint8))


def test_bar_chart_marks_thresholds(view):
    from hiva.app.detect import bar_chart

    r = view.image(astronaut())[0]
    fig = bar_chart(r)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(TINY_AUS)
    widths = sorted(b.get_width() for b in bars)
    assert np.allclose(widths, sorted(r.maps.probs), atol=1e-6)
    marks = ax.collections[0].get_offsets()
    assert np.allclose(sorted(marks[:, 0]), sorted(r.maps.thresholds))


def test_video_table_is_predicts(view, tmp_path):
    """The page's video table is the one `Detector.detect` writes (named by the upload, not the
    server's temporary path), and the timeline has a panel per AU."""
    from hiva.app.detect import timeline

    frames = [astronaut()] * 4 + [np.full((256, 256, 3), 90, np.uint8)] * 2
    clip = write_video(tmp_path / "clip.webm", frames, codec="libvpx")
    csv, df = view.video(clip, tmp_path / "out")
    assert csv.is_file() and len(df) == 6 and set(df["input"]) == {"clip.webm"}
    direct = view.det.detect([str(clip)])
    cols = [c for c in direct.columns if c.endswith("_p")]
    assert np.allclose(df[cols].to_numpy(float), direct[cols].to_numpy(float), atol=1e-6)
    fig = timeline(df, view.aus, view.det.thresholds)
    assert len(fig.axes) == len(TINY_AUS)


def test_video_limits(view, tmp_path):
    long = write_video(tmp_path / "long.webm", [astronaut(64)] * 30, fps=10, codec="libvpx")
    with pytest.raises(HivaError, match=r"3 s long .* at most 2 s"):
        view.video(long, tmp_path / "out")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(HivaError, match="could not be read"):
        view.video(bad, tmp_path / "out")
    with pytest.raises(HivaError, match="no video given"):
        view.video(None, tmp_path / "out")


def test_model_view_run_and_export(view, tiny_run, tmp_path):
    from hiva.app.model_info import ModelView
    from hiva.predict.export import export

    m = ModelView(view.det.loaded)
    tab = m.f1_table()
    assert list(tab["AU"]) == [f"AU{a:02d}" for a in TINY_AUS] + ["mean"]
    saved = json.loads((tiny_run / "fold1" / "metrics.json").read_text())["test"]
    assert np.allclose(tab["test F1 (at 0.5)"][:-1].astype(float),
                       np.round(np.asarray(saved["f1"]) * 100, 1))
    assert tab["test F1 (at 0.5)"].iloc[-1] == pytest.approx(
        np.mean(np.round(np.asarray(saved["f1"]) * 100, 1)), abs=0.05)
    assert "fold 1" in m.summary() and "aus:" in m.config_text()
    assert m.curves() == [] and "plots: false" in m.note  # the tiny run wrote no plots

    export(tiny_run, tmp_path / "exp")
    from hiva.app.detect import DetectView

    e = ModelView(DetectView(tmp_path / "exp", device="cpu").det.loaded)
    assert e.export and "export" in e.summary() and e.curves() == []
    assert list(e.f1_table()["test F1 (at 0.5)"][:-1]) == list(tab["test F1 (at 0.5)"][:-1])
    assert "curves" in e.note


def test_page_builds_with_what_failed_as_messages(tmp_path):
    """A checkpoint or corpus that does not load is a message in its tab; the page builds."""
    from hiva.app import build

    page = build(tmp_path / "no-such-run", tmp_path / "no-such-corpus")
    text = json.dumps(page.get_config_file(), default=str)
    assert "The checkpoint could not be loaded" in text and "does not exist" in text
    assert "The corpus could not be loaded" in text
    # what was asked for and failed is also said in the terminal, before the URL (issue 31)
    assert [p.split(":")[0] for p in page.hiva_problems] == [
        "The checkpoint could not be loaded", "The corpus could not be loaded"]
    assert "no-such-run does not exist" in page.hiva_problems[0]
    page = build()
    text = json.dumps(page.get_config_file(), default=str)
    assert "No checkpoint: start the page with" in text and "No corpus" in text
    assert page.hiva_problems == []  # nothing asked for, nothing failed


def test_page_builds_all_tabs(tiny_run, app_corpus, tiny_st):
    from hiva.app import build

    page = build(tiny_run, app_corpus, device="cpu", encoder=tiny_st)
    cfg = page.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in cfg["components"]}
    assert {"image-in", "bars", "maps", "au-table", "c-rows", "c-found", "m-f1"} <= ids
    assert "could not be loaded" not in json.dumps(cfg, default=str)


def test_cli_refuses_bad_flags():
    from tests.helpers import run_cli as cli

    r = cli("app", "--port", "70000", check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--port 70000 is not a port" in r.stderr
    r = cli("app", "--max-faces", "0", check=False)
    assert r.returncode != 0 and "--max-faces must be ≥ 1" in r.stderr
    r = cli("app", "--max-video-seconds", "0", check=False)
    assert r.returncode != 0 and "--max-video-seconds must be > 0, got 0.0" in r.stderr


def test_page_start_prints_no_tqdm_traceback(tiny_run, tmp_path):
    """A tqdm bar made before the page (loading a model does) and freed after it: gradio's
    tqdm patch made its ``__del__`` print a 7-line AttributeError on every `hiva app` start. A
    fresh process, since the patch is process-wide."""
    import subprocess
    import sys

    script = (
        "import gc, tqdm\n"
        "gc.disable()\n"
        "bar = tqdm.tqdm(total=1, disable=True)\n"
        "bar.me = bar  # a cycle: freed by the collector, after the page is built\n"
        "del bar\n"
        "from hiva.app import build\n"
        f"page = build({str(tiny_run)!r}, device='cpu')\n"
        "assert not page.hiva_problems, page.hiva_problems\n"
        "gc.collect()\n"
        "print('built')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "built" in r.stdout, r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_timeline_draws_one_person_by_track():
    """The video timeline follows a track, not a per-frame face_id: here face 0 changes hands
    at frame 2 (person 1 grows past person 0), and a frame has no face."""
    import pandas as pd

    from hiva.app.detect import timeline, video_tracks
    from hiva.facs import au_column

    rows = []
    for f, faces in enumerate([[(0, 0.1), (1, 0.9)], [(0, 0.1), (1, 0.9)], [(1, 0.9), (0, 0.1)],
                               [(1, 0.9)], []]):
        for k, (track, p) in enumerate(faces):
            rows.append({"frame": f, "face_id": k, "track_id": track, "success": 1,
                         "timestamp": f / 10, **{f"{au_column(a)}_p": p for a in TINY_AUS}})
        if not faces:
            rows.append({"frame": f, "face_id": 0, "track_id": -1, "success": 0,
                         "timestamp": f / 10, **{f"{au_column(a)}_p": np.nan for a in TINY_AUS}})
    df = pd.DataFrame(rows)
    assert video_tracks(df) == [(1, 4), (0, 3)]
    # every frame is on the x axis; the curve is empty (broken) where the person is absent
    for track, p, present in [(None, 0.9, [0, 1, 2, 3]), (1, 0.9, [0, 1, 2, 3]),
                              (0, 0.1, [0, 1, 2])]:
        fig = timeline(df, TINY_AUS, [0.5] * len(TINY_AUS), track)
        y = np.asarray(fig.axes[0].lines[0].get_ydata(), float)
        assert len(y) == 5 and np.flatnonzero(np.isfinite(y)).tolist() == present
        assert np.allclose(y[present], p)
