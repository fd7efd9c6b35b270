"""Shared constants and writers for tests/predict (imported as tests.predict.helpers)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import yaml

from hiva.data.synth import render_synthetic
from tests.helpers import run_cli

TINY_AUS = (1, 2, 4, 6, 12, 25)
TINY_MODEL = dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32,
                  num_heads=2, text_mode="corpus", dropout=0.1)
FPS = 10
# Video frames: "face" = a rendered synthetic face, "astro" = scikit-image's astronaut photo (a real
# face MediaPipe always finds), "grey" = a blank frame (no face).
VIDEO_PLAN = ("face", "astro", "grey", "face", "grey", "astro")
SIZE = 256


def write_text_bank(folder: Path, aus=TINY_AUS, per_au: int = 5, dim: int = 16) -> Path:
    """A real embed bundle (the files ``load_text_bank`` reads) with seeded random unit vectors,
    so no encoder is needed."""
    import pandas as pd
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(len(aus) * per_au, dim, generator=g), dim=-1)
    rows = []
    for i, a in enumerate(aus):
        for j in range(per_au):
            text = f"AU{a} description number {j}: the face moves in way {i * per_au + j}"
            rows.append({"au": a, "text_hash": hashlib.sha1(text.encode()).hexdigest(),
                         "row_id": f"r{a}-{j}", "text": text, "kept": True})
    save_file({"embeddings": emb.contiguous()}, str(folder / "embeddings.safetensors"))
    pd.DataFrame(rows).to_parquet(folder / "index.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "encoder": "random-test-vectors", "encoder_fingerprint": "test-encoder", "dim": dim,
        "fingerprint": "test-bank-0001", "rows": len(rows)}))
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: int = FPS, codec: str = "mpeg4"
                ) -> Path:
    """``codec`` libvpx with a .webm path: a clip a browser plays (Chromium has no MPEG-4
    part 2)."""
    import av

    with av.open(str(path), "w") as box:
        st = box.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                box.mux(pkt)
        for pkt in st.encode():
            box.mux(pkt)
    return path


def astronaut(size: int = SIZE) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size)))


def two_faces_video(path: Path, n: int = 9, blank: tuple[int, ...] = (), seed: int = 5) -> Path:
    """Two rendered faces (different subjects) that walk across a 320×160 frame towards each
    other and swap sides without overlapping (A upper, left to right; B lower, right to left);
    ``blank`` frames are grey (no face)."""
    from PIL import Image

    from hiva.data.manifest import read_manifest
    from hiva.data.synth import render_synthetic

    m = render_synthetic(path.parent / f"{path.stem}_faces", subjects=2, per_subject=1,
                         seed=seed, size=96, workers=1, grid=False, progress=False)
    faces = [np.asarray(Image.open(p).convert("RGB")) for p in read_manifest(m)["path"]]
    frames = []
    for f in range(n):
        rgb = np.full((160, 320, 3), 200, np.uint8)
        if f not in blank:
            xa = 8 + round(f * (216 - 8) / (n - 1))
            xb = 216 - round(f * (216 - 8) / (n - 1))
            rgb[4:100, xa:xa + 96] = faces[0]
            rgb[60:156, xb:xb + 96] = faces[1]
        frames.append(rgb)
    return write_video(path, frames)


def train_tiny_run(root: Path, **model) -> Path:
    """Train the tiny run (6 synthetic subjects, the hand-written bank, 2 steps) in ``root``;
    ``model``: ModelConfig settings over ``TINY_MODEL``. Returns the run folder."""
    manifest = render_synthetic(root / "set", subjects=6, per_subject=6, seed=0, size=64,
                                workers=1, grid=False, progress=False)
    bank = write_text_bank(root / "bank")
    cfg = dict(model=dict(TINY_MODEL, **model), aus=",".join(map(str, TINY_AUS)), num_folds=3,
               folds=[1], epochs=1, max_steps_per_epoch=2, batch_size=4, num_workers=0,
               amp="off", val_fraction=0.25, resize=36, tensorboard=False, plots=False,
               progress=False, channels_last=False, eval_text_per_au=4)
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_cli("train", "--config", root / "cfg.yaml", "--data", manifest, "--text-bank", bank,
            "--out", root / "run")
    return root / "run"
