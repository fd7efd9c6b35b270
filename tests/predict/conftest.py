"""A tiny trained run (6 synthetic subjects, a hand-written text bank, 2 training steps through
the real CLI) and a small media set: a video of synthetic faces, photos and blank frames, and an
image folder with one corrupt file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli
from tests.predict.helpers import SIZE, VIDEO_PLAN, astronaut, train_tiny_run, write_video


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("predict_run"))


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict:
    """{"video": mp4 of VIDEO_PLAN at FPS, "folder": 4 synthetic images + a corrupt .jpg + a
    .txt, "face": one synthetic image path, "manifest": the synthetic set's manifest (with
    landmarks)}."""
    from hiva.data.synth import render_synthetic

    root = tmp_path_factory.mktemp("predict_media")
    m = render_synthetic(root / "faces", subjects=2, per_subject=2, seed=3, size=SIZE,
                         workers=1, grid=False, progress=False)
    from hiva.data.manifest import read_manifest

    faces = [np.asarray(Image.open(p).convert("RGB")) for p in read_manifest(m)["path"]]
    grey = np.full((SIZE, SIZE, 3), 128, np.uint8)
    pick = {"astro": [astronaut()] * 2, "grey": [grey] * 2, "face": faces[:2]}
    frames = [pick[k].pop(0) if len(pick[k]) > 1 else pick[k][0] for k in VIDEO_PLAN]
    video = write_video(root / "clip.mp4", frames)
    folder = root / "images"
    (folder / "sub").mkdir(parents=True)
    for i, rgb in enumerate(faces):
        Image.fromarray(rgb).resize((96, 96)).save(folder / ("sub" if i % 2 else ".") /
                                                   f"img{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("not an image; ignored")
    return {"video": video, "folder": folder, "face": folder / "img0.jpg", "manifest": m}
