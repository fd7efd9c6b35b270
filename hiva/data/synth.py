"""Synthetic AU faces: the set. Identities, expressions and poses are sampled per subject and
drawn by ``hiva.data.synth_face``.

Clearly synthetic: the set exists so that anyone can train and test the pipeline offline (no
AU-labelled face data can be had here). Each identity (= manifest ``subject``) has its own face
shape, proportions, skin tone, hair, eyes and background; each image samples an expression, a
small pose change, lighting, noise, blur and JPEG quality. Expressions (``cooccurrence``):
``emotions`` (the demo's default) draws emotion prototypes plus extras, so AUs co-occur as in real
faces (AU1 with AU2 in surprise and fear); ``independent`` switches each AU on by itself with
probability ``base_rate`` and an independent intensity, so no AU's label says anything about
another's (the benchmark's sets: a detector of one AU cannot stand in for another's).

Writes ``OUT/images/<subject>/<frame>.jpg``, ``OUT/manifest.parquet`` (labels + ``_intensity``
columns on the FACS 0-5 scale; occurrence = intensity >= 1; ``landmarks``: the exact anchor points
of each drawn face, scheme ``hiva-synth``, from which ``hiva.regions`` builds every AU's
region; ``landmarks_neutral``: the same anchors of the same identity at the same pose with no AU,
which do not move with the labels: what a region prior may read), ``OUT/README.md`` and
``OUT/config.yaml``. Finished subjects are kept in ``OUT/parts/`` so a killed run resumes.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.config import check_config, write_config, wrote_config
from hiva.data.image_files import write_image
from hiva.data.synth_face import SYNTH_AUS, render_face, sample_identity
from hiva.errors import HivaError
from hiva.facs import au_column
from hiva.runtime import check_claim, claim_dir, holding, release_dir, write_text_atomic

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
COOCCURRENCE = ("emotions", "independent")
# What a set's folder holds: a folder with any of these that `hiva data synth` did not write is
# refused, never overwritten.
SYNTH_FILES = ("config.yaml", "manifest.parquet", "README.md", "parts", "images", "grids")


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
    cooccurrence: str = "emotions"  # emotions: prototypes (AUs co-occur); independent: none
    base_rate: float = 0.3  # independent: each AU's probability of being on

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
            (self.cooccurrence in COOCCURRENCE,
             f"cooccurrence must be one of {', '.join(COOCCURRENCE)}, got {self.cooccurrence!r}"),
            (0.0 < self.base_rate < 1.0,
             f"base_rate must be in (0, 1) (e.g. 0.3), got {self.base_rate}"),
        ])


def sample_expression(rng: np.random.Generator, difficulty: float,
                      cooccurrence: str = "emotions", base_rate: float = 0.3) -> dict[int, float]:
    """AU intensities on the FACS 0-5 scale, and sub-threshold traces that grow with
    ``difficulty``. ``emotions``: a prototype's AUs (each kept with p=0.8) and random extras;
    ``independent``: each AU on with probability ``base_rate``, independently of the others."""
    if cooccurrence == "independent":
        on = {a for a in SYNTH_AUS if rng.random() < base_rate}
    else:
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
    out, subj, n, seed, size, difficulty, q, cooc, base_rate = args
    rng_id = _subject_rng(seed, subj, 0)
    ident = sample_identity(rng_id)
    base_pose = sample_pose(rng_id, difficulty)
    rng = _subject_rng(seed, subj, 1)
    name = f"S{subj:04d}"
    folder = Path(out) / "images" / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        au = sample_expression(rng, difficulty, cooc, base_rate)
        pose = sample_pose(rng, difficulty, base_pose)
        img, marks = render_face(ident, au, size, pose, rng, difficulty, landmarks=True)
        rest = render_face(ident, {}, size, pose, landmarks=True)[1]  # no rng: draws nothing
        quality = q or int(rng.integers(60, 96))
        rel = f"images/{name}/{i:05d}.jpg"
        write_image(Path(out) / rel, img, quality)
        row = {"path": rel, "subject": name, "sequence": "synth", "frame": i,
               "landmarks": [round(float(v), 2) for v in marks.ravel()],
               "landmarks_neutral": [round(float(v), 2) for v in rest.ravel()]}
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
                     grid: bool = True, jpeg_quality: int = 0, progress: bool = True,
                     cooccurrence: str = "emotions", base_rate: float = 0.3) -> Path:
    """Render the set into ``out``; returns the manifest path. Deterministic by ``seed``."""
    import pandas as pd
    import yaml

    from hiva.data.manifest import write_manifest

    out = Path(out)
    cfg = SynthConfig(str(out), subjects, per_subject, seed, size, difficulty, workers, grid,
                      jpeg_quality, cooccurrence, base_rate)
    cfg_file = out / "config.yaml"
    claim = (out, "--out", "`hiva data synth`",
             lambda p: wrote_config(p / "config.yaml", SynthConfig),
             holding(SYNTH_FILES))
    check_claim(*claim)  # a user's folder holding a config.yaml or README.md is not replaced
    if cfg_file.exists() and (out / "parts").exists():
        old = yaml.safe_load(cfg_file.read_text()) or {}
        keys = ("seed", "size", "difficulty", "per_subject", "jpeg_quality", "cooccurrence")
        if cfg.cooccurrence == "independent":
            keys += ("base_rate",)
        default = SynthConfig()  # a set written before a key existed was drawn with its default
        if any(old.get(k, getattr(default, k)) != getattr(cfg, k) for k in keys):
            raise HivaError(f"{out} holds a synthetic set made with other settings; "
                            "pass a new --out or delete the folder")
    claim_dir(*claim)
    write_config(cfg, cfg_file)
    todo, rows = [], []
    for s in range(subjects):
        part = out / "parts" / f"S{s:04d}.json"
        done = json.loads(part.read_text()) if part.exists() else None
        if done and all("landmarks_neutral" in r for r in done):
            rows.extend(done)
        else:  # not rendered yet, or by a hiva that wrote fewer landmarks: render it (same pixels)
            todo.append((str(out), s, per_subject, seed, size, difficulty, jpeg_quality,
                         cooccurrence, base_rate))
    nw = workers or os.cpu_count() or 1
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo) * per_subject, unit="img", disable=not progress,
                   desc="rendering")
        if nw > 1 and len(todo) > 1:
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
            "landmark_scheme": "hiva-synth", "cooccurrence": cooccurrence,
            "base_rate": base_rate if cooccurrence == "independent" else None,
            "subjects": subjects, "per_subject": per_subject, "size": size,
            "prior_landmarks": "landmarks_neutral (the identity at the frame's pose, no AU)"}
    path = write_manifest(df, out / "manifest.parquet", meta)
    (out / "README.md").write_text(
        "# SYNTHETIC faces — not real people\n\n"
        "Rendered by `hiva data synth` (hiva.data.synth): parametric 2D cartoon faces whose "
        "expressions are driven by FACS Action Units with intensities "
        "(0-5; label = intensity >= 1)."
        f"\n\n{subjects} identities x {per_subject} images, {size}px, seed {seed}, difficulty "
        f"{difficulty}. AUs: {', '.join(map(str, SYNTH_AUS))}. Co-occurrence: {cooccurrence}"
        + (f" (each AU on with p={base_rate}, independently)" if cooccurrence == "independent"
           else " (emotion prototypes: AUs fire together)") + ".\n\n"
        "Useful to test and demo the pipeline offline; numbers measured on it say nothing about "
        "real faces.\n")
    if grid:
        write_grids(out / "grids", size=size, seed=seed)
    release_dir(out)
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
