"""``hiva predict`` and ``hiva.Detector``: AU probabilities for every face in every frame of
images, folders, videos and in-memory frames.

Reads: the inputs (``hiva.predict.media``), a run folder of ``hiva train``, a folder of ``hiva
export`` or a Hub id (``hiva.predict.loader``). Writes (CLI): one table, CSV or Parquet, one row
per face in input order, in the layout ``--format`` names (``hiva.predict.table``: hiva, openface
or feat). The hiva layout::

    input, frame, face_id, track_id, timestamp, confidence, success, face_x, face_y,
    face_width, face_height, AU01_p ... AUnn_p, AU01_c ... AUnn_c[, AU01_r ... AUnn_r]

``timestamp`` is in seconds (0 for images, NaN for in-memory frames), ``confidence`` is
MediaPipe's face-detection score, ``face_*`` the detected box in the frame's pixels (x, y of its
top-left corner), ``_p`` the probability (rounded to 6 decimals), ``_c`` 1 when ``_p`` ≥ the
AU's threshold (the run's validation-tuned thresholds when it stored them, else 0.5), ``_r`` the
FACS intensity 0-5 (only for a model with the intensity head, ``model.intensity``). Every face
MediaPipe finds is a row (``max_faces``: the largest ones only), ``face_id`` 0, 1, ... from the
largest face down within its frame; ``track_id`` follows a face from frame to frame within an
input (``hiva.predict.tracks``: 0, 1, ... in order of appearance; in an image it equals
``face_id``). A frame where no face is found is one row with ``success`` 0, ``confidence`` 0,
``track_id`` -1 and empty box and AU columns. Without alignment (``--no-align``) each whole frame
is one face: ``success`` 1, ``track_id`` 0, ``confidence`` and box empty.

Decoding, detection and alignment overlap the model (``hiva.predict.stream``); faces are found by
``hiva.predict.faces`` and the settings checked by ``hiva.predict.settings``. Rows go out batch
by batch: ``save=`` / the CLI stream them to the file, so memory stays flat on a long video.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from hiva.predict.faces import FaceFinder
from hiva.predict.inference import prepare
from hiva.predict.loader import load, model_input_transform
from hiva.predict.media import expand_inputs
from hiva.predict.resume import predict_to_file
from hiva.predict.settings import MIN_FACE, TRACK_GAP, PredictConfig, check, detect_checks
from hiva.predict.stream import iter_batches
from hiva.predict.table import (
    BOX_COLUMNS,
    OUT_SUFFIXES,
    TableWriter,
    class_columns,
    columns,
    in_format,
    intensity_columns,
    prob_columns,
)
from hiva.runtime import output_file


class Detector:
    """A trained HiVA ready to score faces.

    ``Detector(checkpoint)`` takes a ``hiva train`` run folder (fold ``fold``, default the
    lowest trained one), a ``hiva export`` folder, or the Hub id of an export
    (``OWNER/NAME[@REVISION]``, through the local Hub cache). ``detect(inputs)`` → a
    ``pandas.DataFrame`` with the columns of ``hiva predict``. ``align`` None follows the
    training data (aligned crops → align; the synthetic set → whole frames); ``threshold``
    "auto" uses the run's tuned thresholds when it stored them, else 0.5. ``model_threads``:
    torch's CPU threads for the model while ``detect`` runs (None: torch's setting), shared by up
    to two batches scored at once (``hiva.predict.stream.scorer_plan``); 1 leaves the decode
    and detect threads a core.
    ``max_faces``: score at most this many faces per frame, the largest (None: all).
    ``min_face``: a face (a whole frame without alignment) under this many pixels a side, or a
    strip (``hiva.predict.settings.too_small``), is not scored: its frame is a row without a face,
    counted in ``counts["too_small"]``. ``track_gap``: a face missing from more than this many
    scored frames of a video in a row gets a new ``track_id`` when it returns
    (``hiva.predict.tracks``).
    """

    def __init__(self, checkpoint, *, fold: int | None = None, device: str = "auto",
                 batch_size: int = 16, align: bool | None = None, threshold: str | float = "auto",
                 text_bank: str | None = None, weights: str = "best",
                 model_threads: int | None = None, max_faces: int | None = None,
                 min_face: int = MIN_FACE, track_gap: int = TRACK_GAP):
        check(detect_checks(False, batch_size=batch_size, max_faces=max_faces,
                            min_face=min_face, track_gap=track_gap))
        self.loaded = load(checkpoint, fold=fold, device=device, text_bank=text_bank,
                           weights=weights, threshold=threshold, align=align)
        self.folded = prepare(self.loaded)  # BatchNorms folded into their convolutions
        self.batch_size = batch_size
        self.model_threads = model_threads  # torch threads during detect (None: torch's own)
        self.transform = model_input_transform(self.loaded)
        self.finder = FaceFinder(self.loaded.align, max_faces, min_face)
        self.track_gap = track_gap
        self.unreadable: list[tuple[str, str]] = []
        self.unreadable_at: list[int] = []  # each unreadable file's place among the inputs
        # of the last ``detect``; too_small: faces (frames without alignment) not scored
        self.counts = {"rows": 0, "faces": 0, "too_small": 0}

    # ------------------------------------------------------------------ properties
    @property
    def aus(self) -> tuple[int, ...]:
        return self.loaded.aus

    @property
    def outputs(self) -> tuple[str, ...]:
        """Column stems of the model's outputs: one per AU (``AU04``), then any left/right
        outputs (``AU01L``, ``AU01R``: OpenGraphAU)."""
        return self.loaded.mc.outputs

    @property
    def intensity_aus(self) -> tuple[int, ...]:
        """The AUs with an intensity output (``AUxx_r``): all of them when the model has the
        intensity head (``model.intensity``), else none."""
        return self.aus if getattr(self.loaded.mc, "has_intensity", False) else ()

    @staticmethod
    def _probs(out):
        """Probabilities of every output (the AUs', then the sides'), then the AUs' intensities
        (0-5) when the model has the intensity head, as float32 on the CPU."""
        import torch

        p = out.probs.float()
        if out.side_probs is not None:
            p = torch.cat([p, out.side_probs.float()], dim=1)
        if getattr(out, "intensity", None) is not None:
            p = torch.cat([p, out.intensity.float()], dim=1)
        return p.cpu().numpy()

    @property
    def thresholds(self) -> list[float]:
        return list(self.loaded.thresholds)

    @property
    def align(self) -> bool:
        return self.loaded.align

    @property
    def columns(self) -> list[str]:
        """The columns of ``detect``'s table in the hiva layout (``hiva.predict.table``)."""
        return columns(self.outputs, intensities=self.intensity_aus)

    def describe(self) -> str:
        ld = self.loaded
        made = (f"imported from {ld.meta['imported_from']}" if ld.meta.get("imported_from")
                else f"epoch {ld.meta.get('epoch', '?')}")
        return (f"checkpoint {ld.weights} ({made}, AUs "
                f"{','.join(map(str, ld.aus))}); thresholds: {ld.threshold_source}; "
                f"align: {'on' if ld.align else 'off'} ({ld.align_source}); device {ld.device}")

    # ------------------------------------------------------------------ steps
    def prepare(self, rgb: np.ndarray, landmarks: bool = False):
        """One face of a frame as the model sees it: ``FaceFinder.prepare``."""
        return self.finder.prepare(rgb, landmarks)

    def faces(self, rgb: np.ndarray, landmarks: bool = False) -> list[tuple]:
        """Every face of a frame to score, largest first: ``FaceFinder.faces``."""
        return self.finder.faces(rgb, landmarks)

    def to_tensor(self, img: np.ndarray):
        from PIL import Image

        return self.transform(Image.fromarray(np.ascontiguousarray(img)))

    def to_batch(self, images: list):
        """B×3×S×S model input of face images (aligned crops or whole frames, uint8 RGB H×W×3;
        an item already a ``to_tensor`` output passes as it is): the same values as stacking
        ``to_tensor`` of each, transformed as one batch when they are arrays of one shape."""
        import torch

        if len({im.shape for im in images}) == 1 and isinstance(images[0], np.ndarray):
            x = self.transform(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
            return x.as_subclass(torch.Tensor)  # a plain tensor, not torchvision's Image
        return torch.stack([im if isinstance(im, torch.Tensor) else self.to_tensor(im)
                            for im in images])

    def forward(self, x, regions=None):
        """HiVAOutput for a batch B×3×S×S of transformed images; ``regions`` (B×N×C×3 AU
        region discs in the transformed images' pixels, ``hiva.regions``) or None."""
        import torch

        ld = self.loaded
        x = x.to(ld.device)
        if getattr(ld, "channels_last", False):  # the model's memory format (``prepare``)
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(ld.device.type, dtype=ld.amp) if ld.amp is not None else nullcontext()
        with torch.inference_mode(), ctx:
            if regions is None:
                return ld.model(x, *ld.text_input)
            return ld.model(x, *ld.text_input, regions=regions)

    def score(self, images: list[np.ndarray]) -> np.ndarray:
        """Probabilities (len × N, float32) for face images already prepared (aligned crops, or
        whole frames without alignment)."""
        n = len(self.outputs)
        out = [self._probs(self.forward(self.to_batch(images[i:i + self.batch_size])))[:, :n]
               for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, n), np.float32)

    # ------------------------------------------------------------------ the table
    def iter_batches(self, inputs, progress: bool = False, batch_size: int | None = None,
                     skip_frames: int = 1, **resume):
        """The table (hiva layout, typed) a batch of rows at a time, in input order: one row per
        face, one per faceless frame (``hiva.predict.stream``; ``resume``: its ``start``,
        ``tracks`` and ``done``)."""
        return iter_batches(self, inputs, progress, batch_size, skip_frames, **resume)

    def detect(self, inputs, progress: bool = False, *, batch_size: int | None = None,
               skip_frames: int = 1, save=None, format: str = "hiva"):
        """The table of ``inputs``: one row per face (a frame without one: one row), in input
        order, in layout ``format`` (hiva, openface or feat: ``hiva.predict.table``).

        ``inputs``: a path or a list of paths (images, folders, videos) and/or frames in memory
        (numpy uint8 H×W×3 RGB or T×H×W×3, PIL images; named ``<array i>``). ``batch_size``:
        faces per model call (default: the Detector's). ``skip_frames`` k: score every k-th
        frame of a video (the ``frame`` column keeps the video's index). ``save``: a .csv or
        .parquet path; rows are written batch by batch as they are scored (memory stays flat on
        a long video), the file appears complete at the end, and ``detect`` returns its path
        instead of a DataFrame. Files that could not be read are listed in
        ``df.attrs["unreadable"]`` (and ``self.unreadable``) as (path, reason)."""
        import pandas as pd

        check(detect_checks(False, format=format, out=save))
        self.unreadable, self.unreadable_at = [], []
        self.counts = {"rows": 0, "faces": 0, "too_small": 0}
        self.finder.reset()
        batches = self.iter_batches(inputs, progress, batch_size, skip_frames)
        empty = self._typed([])
        if save is not None:
            with TableWriter(save, empty=in_format(empty, self.outputs, format)) as w:
                for df in batches:
                    self._count(df)
                    w.write(in_format(df, self.outputs, format))
            return Path(save)
        parts = [empty]
        for df in batches:
            self._count(df)
            parts.append(df)
        # the batches are typed already; the table only needs this call's attrs
        df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else empty
        return in_format(self._with_attrs(df), self.outputs, format)

    def _count(self, df) -> None:
        self.counts["rows"] += len(df)
        self.counts["faces"] += int(df["success"].sum())
        # faces the finder left out so far: every frame of ``df`` has been through it
        self.counts["too_small"] = self.finder.skipped

    def _typed(self, rows):
        """A DataFrame of ``rows`` (dicts or a frame) in the hiva layout with stable dtypes, the
        same from a CSV round trip: ints, floats, nullable Int8 classes."""
        import pandas as pd

        df = pd.DataFrame(rows, columns=self.columns)
        df = df.astype({"input": "string", "frame": "int64", "timestamp": "float64",
                        "face_id": "int64", "track_id": "int64", "confidence": "float64",
                        "success": "int64",
                        **dict.fromkeys(BOX_COLUMNS, "float64")})
        for c in prob_columns(self.outputs):
            df[c] = df[c].astype("float64")
        for c in class_columns(self.outputs):
            df[c] = df[c].astype("Int8")
        for c in intensity_columns(self.intensity_aus):
            df[c] = df[c].astype("float64")
        return self._with_attrs(df)

    def _with_attrs(self, df):
        """``df`` with the unreadable files so far and the thresholds in ``df.attrs``."""
        df.attrs["unreadable"] = list(self.unreadable)
        df.attrs["thresholds"] = dict(zip(prob_columns(self.outputs), self.thresholds))
        return df


def run(cfg: PredictConfig) -> dict:
    """Score every frame of ``cfg.inputs`` and write the rows to ``cfg.out`` through a parts
    folder that a rerun resumes (``hiva.predict.resume``); returns a summary."""
    expand_inputs(cfg.inputs)  # a missing path fails now, not after loading the model
    output_file(cfg.out, "--out", OUT_SUFFIXES)  # a folder or unwritable --out: before scoring
    det = Detector(cfg.checkpoint, fold=cfg.fold, device=cfg.device, batch_size=cfg.batch_size,
                   align=cfg.align, threshold=cfg.threshold, text_bank=cfg.text_bank,
                   weights=cfg.weights, model_threads=cfg.model_threads,
                   max_faces=cfg.max_faces, min_face=cfg.min_face, track_gap=cfg.track_gap)
    print(det.describe(), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    table = predict_to_file(det, cfg)  # resumes what a killed run wrote (hiva.predict.resume)
    secs = time.perf_counter() - t0
    bad = det.unreadable
    rows, faces = table["rows"], table["faces"]
    no_face, small = rows - faces, det.counts["too_small"]
    summary = {"rows": rows, "faces": faces, "no_face": no_face, "too_small": small,
               "unreadable": len(bad), "seconds": round(secs, 3), "out": str(cfg.out)}
    print(f"wrote {rows} rows to {cfg.out}: {faces} faces scored, {no_face} frames without a "
          f"face, {len(bad)} unreadable files skipped ({det.counts['faces'] / max(secs, 1e-9):.1f}"
          " faces/s)",
          file=sys.stderr, flush=True)
    if small:
        print(f"{small} faces not scored: under --min-face {cfg.min_face} px a side, or a strip "
              f"(the first: {det.finder.first_skip})",
              file=sys.stderr, flush=True)
    for path, why in bad[:20]:
        print(f"unreadable: {path} ({why})", file=sys.stderr)
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more unreadable files", file=sys.stderr)
    return summary
