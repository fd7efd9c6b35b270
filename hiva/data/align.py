"""Face alignment: detect faces with MediaPipe's face detector (weights shipped in the
mediapipe 0.10.14 wheel, Apache-2.0), pick the largest, and warp it with a similarity transform
that puts the eyes at canonical positions; crops are cached as ``OUT/<relative path>.jpg``.
MediaPipe's face mesh (in the same wheel) gives the face's 478 landmarks, carried into the crop
by the same transform (the ``mediapipe-478`` scheme of ``hiva.regions``).

Reads a manifest; writes aligned crops, ``OUT/manifest.parquet`` (paths → crops, a ``landmarks``
column: x0, y0, x1, y1, ... in crop pixels, NaN where the mesh missed the face) and
``OUT/no_face.csv`` (frames where no face was found, skipped). Each crop's landmarks are cached
beside it (``<crop>.landmarks.npy``), so a rerun reuses crops and landmarks without rerunning
either model; a crop cached without them (an older hiva) is redone from its frame.

Pixel coordinates of landmarks are continuous, pixel i spanning [i, i+1] (as in the other
schemes); OpenCV's warps put pixel i's centre at i, hence the half-pixel shifts in
``map_points``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.config import check_config, write_config, wrote_config
from hiva.data.image_files import write_image
from hiva.errors import HivaError
from hiva.regions import SCHEME_POINTS
from hiva.runtime import atomic_write, claim_dir, holding, release_dir

# Canonical eye centres as fractions of the crop side (the subject's right eye is on the left).
EYE_LEFT = (0.34, 0.40)
EYE_RIGHT = (0.66, 0.40)
PICKS = ("largest", "most-confident")  # which face of several: the largest box or best score
SIZES = (32, 1024)  # crop side in pixels
LANDMARK_SCHEME = "mediapipe-478"
N_LANDMARKS = SCHEME_POINTS[LANDMARK_SCHEME]  # 478: the face mesh with refined irises
# What an aligned folder holds: a folder with any of these that `hiva data align` did not write
# is refused, never overwritten.
ALIGN_FILES = ("config.yaml", "manifest.parquet", "no_face.csv", "crops")
MESH_FACES = 4  # faces the mesh looks for in a frame; a face beyond them gets the close-up pass
MESH_CONTEXT = 2.5  # close-up pass: a square of this many detection-box sides around the face...
MESH_INPUT = 256  # ...resized to this many pixels


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


def map_points(points, M) -> np.ndarray:
    """Points (K×2, continuous pixels: pixel i spans [i, i+1]) through the 2×3 affine ``M`` as
    ``cv2.warpAffine(img, M, ...)`` moves the image: OpenCV puts pixel i's centre at i, so shift
    by half a pixel into its coordinates and back out. K×2 float64."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2) - 0.5
    M = np.asarray(M, dtype=np.float64)
    return p @ M[:, :2].T + M[:, 2] + 0.5


class FaceAligner:
    """``aligner(rgb)`` → ``(crop, info)``; ``crop`` is None when no face is found.
    ``info["landmarks"]``: the face's 478 mesh points in crop pixels (478×2 float32), or None
    when the mesh does not find the detected face. ``landmarks=False`` skips the mesh (about as
    costly as the detector) for callers that only want the crop; landmarks are then None."""

    def __init__(self, size: int = 256, min_confidence: float = 0.5, pick: str = "largest",
                 landmarks: bool = True):
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
        self.landmarks = landmarks
        self._mesh = None  # the face mesh, made on first use

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

    def mesh(self, rgb: np.ndarray, box) -> np.ndarray | None:
        """The 478 face-mesh points (478×2 float64, the frame's continuous pixels) of the face
        detected in ``box`` (x, y, w, h), or None when the mesh does not find it. The mesh's own
        detector is short-range: a face it misses in the whole frame (small, far, or past the
        first ``MESH_FACES``) gets a second try in a close-up of the box. MediaPipe's normalised
        coordinates times the image side are continuous pixels: on a mirrored frame its points
        come back at x ↦ w − x (measured on the astronaut photo), not w − 1 − x."""
        import cv2

        pts = self._mesh_in(rgb, box)
        if pts is None:
            x, y, w, h = box
            s = MESH_INPUT / max(MESH_CONTEXT * max(w, h), 1e-6)
            # Scale about the box centre into the middle of a MESH_INPUT square (continuous px).
            S = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
            S[:, 2] = MESH_INPUT / 2 - 0.5 - s * (np.array([x + w / 2, y + h / 2]) - 0.5)
            close = cv2.warpAffine(np.ascontiguousarray(rgb), S, (MESH_INPUT, MESH_INPUT),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            (bx0, by0), (bx1, by1) = map_points([(x, y), (x + w, y + h)], S)
            q = self._mesh_in(close, (bx0, by0, bx1 - bx0, by1 - by0))
            if q is not None:
                pts = map_points(q, cv2.invertAffineTransform(S))
        return pts

    def _mesh_in(self, rgb: np.ndarray, box) -> np.ndarray | None:
        """Run the mesh on ``rgb``; of the faces it finds, the one whose landmark box centre lies
        inside ``box`` and nearest its centre."""
        if self._mesh is None:
            import mediapipe as mp

            try:
                self._mesh = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=MESH_FACES, refine_landmarks=True)
            except Exception as e:  # noqa: BLE001 — a missing model file, a broken install
                raise HivaError(f"mediapipe's face mesh does not load ({type(e).__name__}: "
                                f"{e}); reinstall mediapipe==0.10.14") from None
        h, w = rgb.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(rgb))
        bx, by, bw, bh = box
        best, best_d = None, math.inf
        for face in res.multi_face_landmarks or []:
            p = np.array([(q.x * w, q.y * h) for q in face.landmark], dtype=np.float64)
            if len(p) != N_LANDMARKS:
                continue
            cx, cy = (p.min(0) + p.max(0)) / 2
            if bx <= cx <= bx + bw and by <= cy <= by + bh:
                d = math.hypot(cx - (bx + bw / 2), cy - (by + bh / 2))
                if d < best_d:
                    best, best_d = p, d
        return best

    def __call__(self, rgb: np.ndarray):
        """The face ``pick`` chooses, aligned: ``(crop, info)``, ``(None, {"faces": 0})`` when
        none is found."""
        faces = self.detect(rgb)
        if not faces:
            return None, {"faces": 0}
        key = (lambda f: f["box"][2] * f["box"][3]) if self.pick == "largest" else (
            lambda f: f["score"])
        crop, info = self.align(rgb, max(faces, key=key))
        info["faces"] = len(faces)
        return crop, info

    def align_all(self, rgb: np.ndarray, max_faces: int | None = None) -> list[tuple]:
        """Every face found (at most ``max_faces``, the largest ones), largest first, each as
        ``(crop, info)``; ``[]`` when none is found. The first is the one ``pick="largest"``
        aligns."""
        faces = sorted(self.detect(rgb), key=lambda f: f["box"][2] * f["box"][3], reverse=True)
        out = []
        for f in faces[:max_faces]:
            crop, info = self.align(rgb, f)
            info["faces"] = len(faces)
            out.append((crop, info))
        return out

    def align(self, rgb: np.ndarray, f: dict):
        """One detected face ``f`` (from ``detect``) warped to the canonical crop: ``(crop,
        info)`` with info's ``score``, ``box`` (x, y, w, h in the frame's pixels), ``M`` and
        ``landmarks``."""
        import cv2

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
        pts = self.mesh(rgb, f["box"]) if self.landmarks else None
        marks = None if pts is None else map_points(pts, M).astype(np.float32)
        return crop, {"score": f["score"], "box": f["box"], "M": M, "landmarks": marks}


def landmarks_path(crop: Path) -> Path:
    """Where a crop's landmarks are cached: ``<crop stem>.landmarks.npy`` beside it."""
    return crop.with_suffix(".landmarks.npy")


def _read_landmarks(path: Path) -> np.ndarray | None:
    """A crop's cached landmarks (478×2 float32, NaN = the mesh missed), or None when there is
    no readable cache (the crop is then redone)."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return a.astype(np.float32) if a.shape == (N_LANDMARKS, 2) else None


def _write_landmarks(path: Path, marks: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save would append .npy to a name
            np.save(fh, np.asarray(marks, dtype=np.float32))

    atomic_write(path, write)


def run(cfg: AlignConfig) -> Path:
    import cv2
    import pandas as pd
    from tqdm import tqdm

    from hiva.data.manifest import manifest_meta, read_manifest, write_manifest

    df = read_manifest(cfg.manifest)
    out = claim_dir(cfg.out, "--out", "`hiva data align`",
                    lambda p: wrote_config(p / "config.yaml", AlignConfig),
                    holding(ALIGN_FILES))
    write_config(cfg, out / "config.yaml")
    src_root = Path(cfg.manifest).resolve().parent
    aligner = None
    nan = np.full((N_LANDMARKS, 2), np.nan, np.float32)
    keep, new_paths, marks, missing = [], [], [], []
    for i, p in enumerate(tqdm(df["path"], desc="aligning", unit="img")):
        try:
            rel = Path(p).resolve().relative_to(src_root)
        except ValueError:
            rel = Path(*Path(p).resolve().parts[1:])
        dst = (out / "crops" / rel).with_suffix(".jpg")
        side = landmarks_path(dst)
        cached = dst.exists()
        lm = _read_landmarks(side) if cached else None
        if lm is None:  # new, or a crop cached without landmarks: (re)do crop and landmarks
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            crop = None
            if img is not None:
                aligner = aligner or FaceAligner(cfg.size, cfg.min_confidence, cfg.pick)
                crop, info = aligner(img[..., ::-1])
            if crop is not None:
                lm = nan if info["landmarks"] is None else info["landmarks"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                _write_landmarks(side, lm)  # before the crop: a crop never has stale landmarks
                write_image(dst, crop, cfg.quality)
            elif cached:  # an old crop whose frame is gone or now faceless: keep it, no marks
                lm = nan
            else:
                missing.append((p, "unreadable" if img is None else "no face"))
                continue
        keep.append(i)
        new_paths.append(str(dst.resolve()))
        marks.append(lm.reshape(-1))
    pd.DataFrame(missing, columns=["path", "reason"]).to_csv(out / "no_face.csv", index=False)
    if not keep:
        raise HivaError(f"no face found in any of {len(df)} images; see {out / 'no_face.csv'}")
    res = df.iloc[keep].copy()
    res["path"] = new_paths
    # One list of 2×478 floats a row; NaN is stored as null in Parquet and reads back as NaN.
    res["landmarks"] = pd.Series(marks, index=res.index, dtype=object)
    meta = manifest_meta(cfg.manifest)
    meta.update({"aligned": True, "aligner": "mediapipe-face-detection", "size": cfg.size,
                 "skipped": len(missing), "landmark_scheme": LANDMARK_SCHEME,
                 "landmarks_missing": int(sum(not np.isfinite(m).all() for m in marks))})
    path = write_manifest(res, out / "manifest.parquet", meta)
    release_dir(out)
    return path
