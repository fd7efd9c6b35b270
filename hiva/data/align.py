"""Face alignment: detect faces with MediaPipe's face detector (weights shipped in the
mediapipe 0.10.14 wheel, Apache-2.0), pick the largest, and warp it with a similarity transform
that puts the eyes at canonical positions; crops are cached as ``OUT/<relative path>.jpg``.

Reads a manifest; writes aligned crops, ``OUT/manifest.parquet`` (paths → crops) and
``OUT/no_face.csv`` (frames where no face was found, skipped). A rerun reuses existing crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.config import check_config
from hiva.errors import HivaError

# Canonical eye centres as fractions of the crop side (the subject's right eye is on the left).
EYE_LEFT = (0.34, 0.40)
EYE_RIGHT = (0.66, 0.40)
PICKS = ("largest", "most-confident")  # which face of several: the largest box or best score
SIZES = (32, 1024)  # crop side in pixels


@dataclass(frozen=True)
class AlignConfig:
    manifest: str = "manifest.parquet"
    out: str = "aligned"
    size: int = 256
    min_confidence: float = 0.5
    pick: str = "largest"  # largest | most-confident
    quality: int = 95  # JPEG quality of the crops

    def __post_init__(self) -> None:
        lo, hi = SIZES
        check_config("align", [
            (bool(str(self.manifest).strip()), "manifest must name a manifest file"),
            (bool(str(self.out).strip()), "out must name a folder"),
            (lo <= self.size <= hi, f"size must be in {lo}..{hi} pixels, got {self.size}"),
            (0.0 <= self.min_confidence <= 1.0,
             f"min_confidence must be in 0..1, got {self.min_confidence}"),
            (self.pick in PICKS, f"pick must be one of {', '.join(PICKS)}, got {self.pick!r}"),
            (1 <= self.quality <= 100, f"quality must be in 1..100, got {self.quality}"),
        ])


class FaceAligner:
    """``aligner(rgb)`` → ``(crop, info)``; ``crop`` is None when no face is found."""

    def __init__(self, size: int = 256, min_confidence: float = 0.5, pick: str = "largest"):
        try:
            import mediapipe as mp
        except Exception as e:  # noqa: BLE001 — any import failure means the same fix
            raise HivaError(f"mediapipe does not import ({type(e).__name__}: {e}); "
                            "install mediapipe==0.10.14") from None
        if pick not in PICKS:
            raise HivaError(f"unknown --pick {pick!r}; use largest or most-confident")
        # model_selection=1: the full-range model, for faces that are not close to the camera.
        self._det = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence)
        self.size, self.pick = size, pick

    def detect(self, rgb: np.ndarray) -> list[dict]:
        h, w = rgb.shape[:2]
        res = self._det.process(np.ascontiguousarray(rgb))
        faces = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            kp = d.location_data.relative_keypoints
            faces.append({
                "box": (bb.xmin * w, bb.ymin * h, bb.width * w, bb.height * h),
                "score": float(d.score[0]),
                # MediaPipe keypoint 0 is the subject's right eye, 1 the left eye.
                "eyes": ((kp[0].x * w, kp[0].y * h), (kp[1].x * w, kp[1].y * h)),
            })
        return faces

    def __call__(self, rgb: np.ndarray):
        import cv2

        faces = self.detect(rgb)
        if not faces:
            return None, {"faces": 0}
        key = (lambda f: f["box"][2] * f["box"][3]) if self.pick == "largest" else (
            lambda f: f["score"])
        f = max(faces, key=key)
        (x0, y0), (x1, y1) = f["eyes"]
        src_d = math.hypot(x1 - x0, y1 - y0)
        dst_d = (EYE_RIGHT[0] - EYE_LEFT[0]) * self.size
        s = dst_d / max(src_d, 1e-6)
        ang = math.atan2(y1 - y0, x1 - x0)
        c, sn = s * math.cos(-ang), s * math.sin(-ang)
        # Similarity: rotate the eye line horizontal, scale, move the eye midpoint into place.
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        tx = (EYE_LEFT[0] + EYE_RIGHT[0]) / 2 * self.size
        ty = EYE_LEFT[1] * self.size
        M = np.array([[c, -sn, tx - (c * mx - sn * my)], [sn, c, ty - (sn * mx + c * my)]])
        crop = cv2.warpAffine(rgb, M, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return crop, {"faces": len(faces), "score": f["score"], "box": f["box"], "M": M}


def run(cfg: AlignConfig) -> Path:
    import cv2
    import pandas as pd
    from tqdm import tqdm

    from hiva.config import write_config
    from hiva.data.image_files import write_image
    from hiva.data.manifest import manifest_meta, read_manifest, write_manifest

    df = read_manifest(cfg.manifest)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out / "config.yaml")
    src_root = Path(cfg.manifest).resolve().parent
    aligner = None
    keep, new_paths, missing = [], [], []
    for i, p in enumerate(tqdm(df["path"], desc="aligning", unit="img")):
        try:
            rel = Path(p).resolve().relative_to(src_root)
        except ValueError:
            rel = Path(*Path(p).resolve().parts[1:])
        dst = (out / "crops" / rel).with_suffix(".jpg")
        if not dst.exists():
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            if img is None:
                missing.append((p, "unreadable"))
                continue
            aligner = aligner or FaceAligner(cfg.size, cfg.min_confidence, cfg.pick)
            crop, _ = aligner(img[..., ::-1])
            if crop is None:
                missing.append((p, "no face"))
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(dst, crop, cfg.quality)
        keep.append(i)
        new_paths.append(str(dst.resolve()))
    pd.DataFrame(missing, columns=["path", "reason"]).to_csv(out / "no_face.csv", index=False)
    if not keep:
        raise HivaError(f"no face found in any of {len(df)} images; see {out / 'no_face.csv'}")
    res = df.iloc[keep].copy()
    res["path"] = new_paths
    meta = manifest_meta(cfg.manifest)
    meta.update({"aligned": True, "aligner": "mediapipe-face-detection", "size": cfg.size,
                 "skipped": len(missing)})
    return write_manifest(res, out / "manifest.parquet", meta)
