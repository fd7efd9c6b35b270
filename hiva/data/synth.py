"""Synthetic AU faces: the set. Identities, expressions and poses are sampled per subject and
drawn by ``hiva.data.synth_face``.

Clearly synthetic: the set exists so that anyone can train and test the pipeline offline (no
AU-labelled face data can be had here). Each identity (= manifest ``subject``) has its own face
shape, proportions, skin tone, hair, eyes and background; each image samples an expression from
emotion prototypes plus noise, a small pose change, lighting, noise, blur and JPEG quality.

Writes ``OUT/images/<subject>/<frame>.jpg``, ``OUT/manifest.parquet`` (labels + ``_intensity``
columns on the FACS 0-5 scale; occurrence = intensity >= 1; ``landmarks``: the exact anchor points
of each drawn face, scheme ``hiva-synth``, from which ``hiva.data.regions`` builds every AU's
region), ``OUT/README.md`` and
``OUT/config.yaml``. Finished subjects are kept in ``OUT/parts/`` so a killed run resumes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.config import check_config
from hiva.data.image_files import write_image
from hiva.data.synth_face import SYNTH_AUS, render_face, sample_identity
from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.runtime import write_text_atomic

# Emotion prototypes (after EMFACS-style tables): the AUs that usually fire together.
PROTOTYPES: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happiness": (6, 12, 25),
    "sadness": (1, 4, 15, 17),
    "surprise": (1, 2, 5, 25, 26),
    "fear": (1, 2, 4, 5, 7, 20, 25),
    "anger": (4, 5, 7, 23, 24),
    "disgust": (9, 10, 15, 17, 25),
    "contempt": (12, 14),
    "pain": (4, 6, 7, 9, 10, 25),
    "talk": (25, 26),
    "press": (17, 24),
}
_PROTO_P = np.array([0.12, 0.16, 0.09, 0.09, 0.07, 0.08, 0.07, 0.06, 0.06, 0.1, 0.1])
_PROTO_P = _PROTO_P / _PROTO_P.sum()

SIZES = (64, 512)  # image side in pixels (128..256 recommended)


@dataclass(frozen=True)
class SynthConfig:
    out: str = "synth"
    subjects: int = 40
    per_subject: int = 30
    seed: int = 0
    size: int = 160
    difficulty: float = 0.3  # 0 = strong clear AUs; 1 = subtle intensities, more noise and pose
    workers: int = 0  # 0 = os.cpu_count()
    grid: bool = True
    jpeg_quality: int = 0  # 0 = random per image in [60, 95]

    def __post_init__(self) -> None:
        lo, hi = SIZES
        check_config("synth", [
            (bool(str(self.out).strip()), "out must name a folder"),
            (self.subjects >= 1, f"subjects must be ≥ 1, got {self.subjects}"),
            (self.per_subject >= 1, f"per_subject must be ≥ 1, got {self.per_subject}"),
            (self.seed >= 0, f"seed must be ≥ 0, got {self.seed}"),
            (lo <= self.size <= hi,
             f"size must be in {lo}..{hi} pixels (128..256 recommended), got {self.size}"),
            (0.0 <= self.difficulty <= 1.0,
             f"difficulty must be in 0..1 (0 clear .. 1 subtle), got {self.difficulty}"),
            (self.workers >= 0, f"workers must be ≥ 0 (0 = all cores), got {self.workers}"),
            (isinstance(self.grid, bool), f"grid must be true or false, got {self.grid!r}"),
            (0 <= self.jpeg_quality <= 100,
             f"jpeg_quality must be in 1..100, or 0 for a random one per image in 60..95, got "
             f"{self.jpeg_quality}"),
        ])


def sample_expression(rng: np.random.Generator, difficulty: float) -> dict[int, float]:
    """AU intensities on the FACS 0-5 scale: a prototype's AUs (each kept with p=0.8), random
    extras, and sub-threshold traces that grow with ``difficulty``."""
    proto = PROTOTYPES[list(PROTOTYPES)[rng.choice(len(PROTOTYPES), p=_PROTO_P)]]
    on = {a for a in proto if rng.random() < 0.8}
    on |= {a for a in SYNTH_AUS if rng.random() < 0.06}
    expo = 1.0 + 3.0 * difficulty  # higher difficulty → intensities pile up near the threshold
    out = {}
    for a in SYNTH_AUS:
        if a in on:
            out[a] = 1.0 + 4.0 * float(rng.random()) ** expo
        elif rng.random() < difficulty:
            out[a] = float(rng.uniform(0.0, 0.6))
        else:
            out[a] = 0.0
    return out


def sample_pose(rng: np.random.Generator, difficulty: float, base=None) -> tuple:
    r = 1 + difficulty
    pose = (math.radians(rng.normal(0, 4 * r)), rng.uniform(0.9, 1.04), rng.normal(0, 0.02 * r),
            rng.normal(0, 0.02 * r), rng.normal(0, 0.03 * r))
    if base is not None:
        pose = tuple(b + x for b, x in zip(base, (pose[0] * 0.5, pose[1] - 0.97, pose[2] * 0.5,
                                                   pose[3] * 0.5, pose[4] * 0.5)))
    return pose


def _subject_rng(seed: int, subject: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, subject, stream])


def _render_subject(args) -> list[dict]:
    out, subj, n, seed, size, difficulty, q = args
    rng_id = _subject_rng(seed, subj, 0)
    ident = sample_identity(rng_id)
    base_pose = sample_pose(rng_id, difficulty)
    rng = _subject_rng(seed, subj, 1)
    name = f"S{subj:04d}"
    folder = Path(out) / "images" / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        au = sample_expression(rng, difficulty)
        img, marks = render_face(ident, au, size, sample_pose(rng, difficulty, base_pose), rng,
                                 difficulty, landmarks=True)
        quality = q or int(rng.integers(60, 96))
        rel = f"images/{name}/{i:05d}.jpg"
        write_image(Path(out) / rel, img, quality)
        row = {"path": rel, "subject": name, "sequence": "synth", "frame": i,
               "landmarks": [round(float(v), 2) for v in marks.ravel()]}
        for k in SYNTH_AUS:
            row[au_column(k)] = int(au[k] >= 1.0)
            row[f"{au_column(k)}_intensity"] = round(au[k], 3)
        rows.append(row)
    part = Path(out) / "parts" / f"{name}.json"
    part.parent.mkdir(exist_ok=True)
    write_text_atomic(part, json.dumps(rows))  # the part file marks the subject done
    return rows


def render_synthetic(out, subjects: int = 40, per_subject: int = 30, seed: int = 0,
                     size: int = 160, difficulty: float = 0.3, workers: int = 0,
                     grid: bool = True, jpeg_quality: int = 0, progress: bool = True) -> Path:
    """Render the set into ``out``; returns the manifest path. Deterministic by ``seed``."""
    import pandas as pd
    import yaml

    from hiva.config import write_config
    from hiva.data.manifest import write_manifest

    out = Path(out)
    cfg = SynthConfig(str(out), subjects, per_subject, seed, size, difficulty, workers, grid,
                      jpeg_quality)
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "config.yaml"
    if cfg_file.exists() and (out / "parts").exists():
        old = yaml.safe_load(cfg_file.read_text()) or {}
        keys = ("seed", "size", "difficulty", "per_subject", "jpeg_quality")
        if any(old.get(k) != getattr(cfg, k) for k in keys):
            raise HivaError(f"{out} holds a synthetic set made with other settings; "
                            "pass a new --out or delete the folder")
    write_config(cfg, cfg_file)
    todo, rows = [], []
    for s in range(subjects):
        part = out / "parts" / f"S{s:04d}.json"
        done = json.loads(part.read_text()) if part.exists() else None
        if done and all("landmarks" in r for r in done):
            rows.extend(done)
        else:  # not rendered yet, or by a hiva that wrote no landmarks: render it (same pixels)
            todo.append((str(out), s, per_subject, seed, size, difficulty, jpeg_quality))
    nw = workers or os.cpu_count() or 1
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo) * per_subject, unit="img", disable=not progress,
                   desc="rendering")
        if nw > 1 and len(todo) > 1:
            import multiprocessing as mp

            with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(nw) as pool:
                for r in pool.imap_unordered(_render_subject, todo):
                    rows.extend(r)
                    bar.update(len(r))
        else:
            for t in todo:
                r = _render_subject(t)
                rows.extend(r)
                bar.update(len(r))
        bar.close()
    df = pd.DataFrame(rows).sort_values(["subject", "frame"]).reset_index(drop=True)
    meta = {"source": "synthetic", "synthetic": True, "generator": "hiva.data.synth",
            "seed": seed, "difficulty": difficulty, "occurrence_rule": "intensity >= 1 (0-5)",
            "landmark_scheme": "hiva-synth"}
    path = write_manifest(df, out / "manifest.parquet", meta)
    (out / "README.md").write_text(
        "# SYNTHETIC faces — not real people\n\n"
        "Rendered by `hiva data synth` (hiva.data.synth): parametric 2D cartoon faces whose "
        "expressions are driven by FACS Action Units with intensities "
        "(0-5; label = intensity >= 1)."
        f"\n\n{subjects} identities x {per_subject} images, {size}px, seed {seed}, difficulty "
        f"{difficulty}. AUs: {', '.join(map(str, SYNTH_AUS))}.\n\n"
        "Useful to test and demo the pipeline offline; numbers measured on it say nothing about "
        "real faces.\n")
    if grid:
        write_grids(out / "grids", size=size, seed=seed)
    return path


def write_grids(folder, size: int = 160, seed: int = 0, identities: int = 6) -> list[Path]:
    """One PNG per AU: top row neutral faces, bottom row the same faces with only that AU at
    intensity 4; plus ``all.png`` (one row per AU, the AU-on faces of the first identities)."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [sample_identity(_subject_rng(seed, 10_000 + j, 0)) for j in range(identities)]
    pose = (0.0, 1.0, 0.0, 0.0, 0.0)
    neutral = [render_face(p, {}, size, pose) for p in ids]
    paths, rows = [], []
    for k in SYNTH_AUS:
        on = [render_face(p, {k: 4.0}, size, pose) for p in ids]
        g = np.concatenate([np.concatenate(neutral, 1), np.concatenate(on, 1)], 0)
        g = np.concatenate([np.full((24, g.shape[1], 3), 255, np.uint8), g], 0)
        cv2.putText(g, f"AU{k}: top neutral, bottom AU{k} at intensity 4 (SYNTHETIC)", (4, 17),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        paths.append(write_image(folder / f"{au_column(k)}.png", g))
        row = np.concatenate([neutral[0]] + on[:3], 1).copy()
        cv2.putText(row, f"AU{k}", (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2,
                    cv2.LINE_AA)
        rows.append(row)
    paths.append(write_image(folder / "all.png", np.concatenate(rows, 0)))
    return paths
