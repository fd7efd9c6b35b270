"""``hiva predict`` and ``hiva.Detector``: AU probabilities for every face in every frame of
images, folders, videos and in-memory frames.

Reads: the inputs (``hiva.predict.media``), a run folder of ``hiva train``, a folder of ``hiva
export`` or a Hub id (``hiva.predict.loader``). Writes (CLI): one table, CSV or Parquet, one row
per face in input order, in the layout ``--format`` names (``hiva.predict.table``: hiva, openface
or feat). The hiva layout::

    input, frame, face_id, timestamp, confidence, success, face_x, face_y, face_width,
    face_height, AU01_p ... AUnn_p, AU01_c ... AUnn_c

``timestamp`` is in seconds (0 for images, NaN for in-memory frames), ``confidence`` is
MediaPipe's face-detection score, ``face_*`` the detected box in the frame's pixels (x, y of its
top-left corner), ``_p`` the probability (rounded to 6 decimals), ``_c`` 1 when ``_p`` ≥ the
AU's threshold (the run's validation-tuned thresholds when it stored them, else 0.5). Every face
MediaPipe finds is a row (``max_faces``: the largest ones only), ``face_id`` 0, 1, ... from the
largest face down (no tracking across frames: ids are per frame). A frame where no face is found
is one row with ``success`` 0, ``confidence`` 0 and empty box and AU columns. Without alignment
(``--no-align``) each whole frame is one face: ``success`` 1, ``confidence`` and box empty.

Decoding, detection and alignment run in one background thread while the model scores full
batches in the caller's thread, so the two overlap (benchmarks/bench_predict.py measures it).
Rows go out batch by batch: ``save=`` / the CLI stream them to the file, so memory stays flat on
a long video.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.predict.table import (
    BOX_COLUMNS,
    FORMATS,
    OUT_SUFFIXES,
    class_columns,
    columns,
    in_format,
    prob_columns,
)

NO_BOX = (float("nan"),) * 4


@dataclass(frozen=True)
class PredictConfig:
    """What ``hiva predict`` runs; ``align`` None = as the model was trained."""

    inputs: tuple[str, ...]
    checkpoint: str
    out: str
    batch_size: int = 16
    device: str = "auto"
    align: bool | None = None
    fold: int | None = None
    threshold: str = "auto"
    text_bank: str | None = None
    weights: str = "best"
    progress: bool = True
    model_threads: int | None = None
    format: str = "hiva"
    max_faces: int | None = None
    skip_frames: int = 1

    def __post_init__(self) -> None:
        from hiva.config import check_config

        check_config("predict", [
            (len(self.inputs) > 0, "give at least one image, folder or video"),
            (bool(self.checkpoint), "--checkpoint names the run folder, export folder or Hub "
             "id (OWNER/NAME) to use"),
            (self.batch_size >= 1, f"--batch-size must be ≥ 1, got {self.batch_size}"),
            (Path(self.out).suffix.lower() in OUT_SUFFIXES,
             f"--out {self.out}: end it in .csv or .parquet"),
            (self.weights in ("best", "last"), f"--weights {self.weights!r}: use best or last"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"--device {self.device!r}: use auto, cpu, cuda or cuda:N"),
            (self.fold is None or self.fold >= 1, f"--fold must be ≥ 1, got {self.fold}"),
            (self.model_threads is None or self.model_threads >= 1,
             f"--model-threads must be ≥ 1, got {self.model_threads}"),
            (_threshold_ok(self.threshold),
             f"--threshold {self.threshold!r}: pass auto or a number in (0, 1)"),
            (self.format in FORMATS,
             f"--format {self.format!r}: use one of {', '.join(FORMATS)}"),
            (self.max_faces is None or self.max_faces >= 1,
             f"--max-faces must be ≥ 1, got {self.max_faces}"),
            (self.skip_frames >= 1, f"--skip-frames must be ≥ 1, got {self.skip_frames}"),
        ])


def _threshold_ok(value) -> bool:
    if value == "auto":
        return True
    try:
        return 0.0 < float(value) < 1.0
    except (TypeError, ValueError):
        return False


def quiet_mediapipe() -> None:
    """MediaPipe/TFLite print C++ INFO lines and a protobuf deprecation warning on first use;
    keep them off a user's terminal (real errors still raise)."""
    import warnings

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype.*")


class _native_stderr_silenced:
    """Point file descriptor 2 at /dev/null while MediaPipe starts: its C++ (TFLite, absl) writes
    INFO lines there that no logging setting reaches. Python exceptions are unaffected."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
        except OSError:  # no real fd 2 (embedded interpreters): leave it alone
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


class Detector:
    """A trained HiVA ready to score faces.

    ``Detector(checkpoint)`` takes a ``hiva train`` run folder (fold ``fold``, default the
    lowest trained one), a ``hiva export`` folder, or the Hub id of an export
    (``OWNER/NAME[@REVISION]``, through the local Hub cache). ``detect(inputs)`` → a
    ``pandas.DataFrame`` with the columns of ``hiva predict``. ``align`` None follows the
    training data (aligned crops → align; the synthetic set → whole frames); ``threshold``
    "auto" uses the run's tuned thresholds when it stored them, else 0.5. ``model_threads``:
    torch's CPU threads while ``detect`` runs (None: torch's setting; on a machine shared with
    other work, cores - 1 leaves the background decode/detect thread a core and avoids OpenMP
    stalls).
    ``max_faces``: score at most this many faces per frame, the largest (None: all).
    """

    def __init__(self, checkpoint, *, fold: int | None = None, device: str = "auto",
                 batch_size: int = 16, align: bool | None = None, threshold: str | float = "auto",
                 text_bank: str | None = None, weights: str = "best",
                 model_threads: int | None = None, max_faces: int | None = None):
        from hiva.predict.loader import load, model_input_transform

        if batch_size < 1:
            raise HivaError(f"batch_size must be ≥ 1, got {batch_size}")
        if max_faces is not None and max_faces < 1:
            raise HivaError(f"max_faces must be ≥ 1 (or None: every face), got {max_faces}")
        self.max_faces = max_faces
        self.loaded = load(checkpoint, fold=fold, device=device, text_bank=text_bank,
                           weights=weights, threshold=threshold, align=align)
        self.batch_size = batch_size
        self.model_threads = model_threads  # torch threads during detect (None: torch's own)
        self.transform = model_input_transform(self.loaded)
        self._aligner = None
        self.unreadable: list[tuple[str, str]] = []
        self.counts = {"rows": 0, "faces": 0}  # of the last ``detect``

    # ------------------------------------------------------------------ properties
    @property
    def aus(self) -> tuple[int, ...]:
        return self.loaded.aus

    @property
    def outputs(self) -> tuple[str, ...]:
        """Column stems of the model's outputs: one per AU (``AU04``), then any left/right
        outputs (``AU01L``, ``AU01R``: OpenGraphAU)."""
        return self.loaded.mc.outputs

    @staticmethod
    def _probs(out):
        """Probabilities of every output (the AUs', then the sides'), as float32 on the CPU."""
        import torch

        p = out.probs.float()
        if out.side_probs is not None:
            p = torch.cat([p, out.side_probs.float()], dim=1)
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
        return columns(self.outputs)

    def describe(self) -> str:
        ld = self.loaded
        made = (f"imported from {ld.meta['imported_from']}" if ld.meta.get("imported_from")
                else f"epoch {ld.meta.get('epoch', '?')}")
        return (f"checkpoint {ld.weights} ({made}, AUs "
                f"{','.join(map(str, ld.aus))}); thresholds: {ld.threshold_source}; "
                f"align: {'on' if ld.align else 'off'} ({ld.align_source}); device {ld.device}")

    # ------------------------------------------------------------------ steps
    def aligner(self, landmarks: bool = False):
        """The face aligner; ``landmarks=True`` one that also runs the face mesh (it doubles the
        cost per face, so prediction leaves it out)."""
        if self._aligner is None or (landmarks and not self._aligner.landmarks):
            quiet_mediapipe()
            from hiva.data.align import FaceAligner

            with _native_stderr_silenced():
                aligner = FaceAligner(size=256, landmarks=landmarks)
                probe = np.zeros((64, 64, 3), np.uint8)
                aligner.detect(probe)  # TFLite logs on its first run
                if landmarks:
                    aligner.mesh(probe, (0, 0, 64, 64))
            self._aligner = aligner
        return self._aligner

    def prepare(self, rgb: np.ndarray, landmarks: bool = False):
        """(face image the model sees before its transform, detection confidence); (None, 0.0)
        when aligning and no face is found; confidence NaN without alignment. ``landmarks=True``
        adds the aligner's face-mesh landmarks in the face image's pixels (None without
        alignment or when the mesh found none)."""
        if not self.align:
            return (rgb, float("nan"), None) if landmarks else (rgb, float("nan"))
        crop, info = self.aligner(landmarks)(rgb)
        if crop is None:
            return (None, 0.0, None) if landmarks else (None, 0.0)
        if landmarks:
            return crop, float(info["score"]), info.get("landmarks")
        return crop, float(info["score"])

    def faces(self, rgb: np.ndarray, landmarks: bool = False) -> list[tuple]:
        """Every face of a frame to score, largest first (at most ``max_faces``): (face image
        before the model's transform, detection confidence, box x, y, w, h in the frame's
        pixels); ``[]`` when aligning finds none. Without alignment the whole frame is one face
        (confidence and box NaN). ``landmarks=True`` appends the face mesh's points in the face
        image's pixels to each tuple (None without alignment or when the mesh missed)."""
        if not self.align:
            return [(rgb, float("nan"), NO_BOX) + ((None,) if landmarks else ())]
        return [(crop, float(info["score"]), tuple(float(v) for v in info["box"]))
                + ((info.get("landmarks"),) if landmarks else ())
                for crop, info in self.aligner(landmarks).align_all(rgb, self.max_faces)]

    def to_tensor(self, img: np.ndarray):
        from PIL import Image

        return self.transform(Image.fromarray(np.ascontiguousarray(img)))

    def forward(self, x, regions=None):
        """HiVAOutput for a batch B×3×S×S of transformed images; ``regions`` (B×N×C×3 AU
        region discs in the transformed images' pixels, ``hiva.data.regions``) or None."""
        from contextlib import nullcontext

        import torch

        ld = self.loaded
        x = x.to(ld.device)
        ctx = torch.autocast(ld.device.type, dtype=ld.amp) if ld.amp is not None else nullcontext()
        with torch.inference_mode(), ctx:
            if regions is None:
                return ld.model(x, *ld.text_input)
            return ld.model(x, *ld.text_input, regions=regions)

    def score(self, images: list[np.ndarray]) -> np.ndarray:
        """Probabilities (len × N, float32) for face images already prepared (aligned crops, or
        whole frames without alignment)."""
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.stack([self.to_tensor(im) for im in images[i:i + self.batch_size]])
            out.append(self._probs(self.forward(x)))
        n = len(self.outputs)
        return np.concatenate(out) if out else np.zeros((0, n), np.float32)

    # ------------------------------------------------------------------ the pipeline
    def _produce(self, sources, every: int, q: queue.Queue, stop: threading.Event) -> None:
        """Background thread: decode → detect/align → tensors, in input order; one item per
        frame with a list of (tensor, confidence, box), empty when no face was found."""
        from hiva.predict.media import Unreadable, iter_frames

        try:
            for src in sources:
                try:
                    for fr in iter_frames(src, every):
                        if stop.is_set():
                            return
                        faces = [(self.to_tensor(img), conf, box)
                                 for img, conf, box in self.faces(fr.rgb)]
                        q.put(("frame", (fr.source, fr.frame, fr.timestamp, faces)))
                except Unreadable as e:
                    q.put(("unreadable", (src.path, str(e))))
        except BaseException as e:  # noqa: BLE001 — handed to the caller's thread to re-raise
            q.put(("error", e))
        finally:
            q.put(("end", None))

    def iter_batches(self, inputs, progress: bool = False, batch_size: int | None = None,
                     skip_frames: int = 1):
        """Yield the table (hiva layout, typed) a batch of rows at a time, in input order: one
        row per face, one per faceless frame. Unreadable files are appended to
        ``self.unreadable`` as (path, reason)."""
        import torch
        from tqdm import tqdm

        from hiva.predict.media import count_frames, expand_inputs

        bs = self.batch_size if batch_size is None else batch_size
        if bs < 1 or skip_frames < 1:
            raise HivaError(f"batch_size and skip_frames must be ≥ 1, got {bs} and "
                            f"{skip_frames}")
        sources = expand_inputs(inputs)
        total = None
        if progress:
            counts = [count_frames(s, skip_frames) for s in sources]
            total = None if any(c is None for c in counts) else sum(counts)
        bar = tqdm(total=total, unit="frame", desc="predict", disable=not progress,
                   dynamic_ncols=True, file=sys.stderr)
        q: queue.Queue = queue.Queue(maxsize=4 * bs)
        stop = threading.Event()
        # Torch keeps its threads by default: on an idle 2-core machine that is fastest (the
        # decode/detect thread needs ~5 ms a frame). When other processes load the cores, torch's
        # OpenMP threads spin waiting for a descheduled peer and a batch takes 5-20x longer;
        # ``model_threads`` = cores - 1 avoids that (benchmarks/bench_predict.py measures both).
        threads = torch.get_num_threads()
        want = self.model_threads or threads
        if self.loaded.device.type == "cpu" and want != threads:
            torch.set_num_threads(want)
        worker = threading.Thread(target=self._produce, args=(sources, skip_frames, q, stop),
                                  daemon=True)
        worker.start()
        pcols, ccols = prob_columns(self.outputs), class_columns(self.outputs)
        th = np.asarray(self.thresholds, dtype=np.float64)
        pending: list[tuple] = []  # frames in order; their faces wait for the batch

        def flush():
            xs = [x for *_, faces in pending for x, _, _ in faces]
            probs = None
            if xs:
                probs = np.round(self._probs(self.forward(torch.stack(xs))).astype(np.float64),
                                 6)
            rows, j = [], 0
            for src, frame, ts, faces in pending:
                base = {"input": src, "frame": frame, "timestamp": round(float(ts), 6)}
                if not faces:
                    rows.append({**base, "face_id": 0, "confidence": 0.0, "success": 0,
                                 **dict(zip(BOX_COLUMNS, NO_BOX))})
                for k, (_, conf, box) in enumerate(faces):
                    p = probs[j]
                    j += 1
                    row = {**base, "face_id": k, "confidence": round(conf, 6), "success": 1,
                           **dict(zip(BOX_COLUMNS, (round(v, 2) for v in box)))}
                    row.update(zip(pcols, p.tolist()))
                    row.update(zip(ccols, (p >= th).astype(int).tolist()))
                    rows.append(row)
            bar.update(len(pending))
            pending.clear()
            return self._typed(rows)

        try:
            n_faces = 0
            while True:
                kind, item = q.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise item
                if kind == "unreadable":
                    self.unreadable.append(item)
                    continue
                pending.append(item)
                n_faces += len(item[3])
                # a full batch of faces, or a long run of frames without one (keeps output and
                # the progress bar moving through faceless stretches)
                if n_faces >= bs or len(pending) >= 8 * bs:
                    yield flush()
                    n_faces = 0
            if pending:
                yield flush()
        finally:
            torch.set_num_threads(threads)
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass
            bar.close()

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

        from hiva.predict.table import TableWriter

        if format not in FORMATS:
            raise HivaError(f"format {format!r}: use one of {', '.join(FORMATS)}")
        self.unreadable = []
        self.counts = {"rows": 0, "faces": 0}
        batches = self.iter_batches(inputs, progress, batch_size, skip_frames)
        empty = self._typed([])
        if save is not None:
            if Path(save).suffix.lower() not in OUT_SUFFIXES:
                raise HivaError(f"save={save}: end it in .csv or .parquet")
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

    def _typed(self, rows):
        """A DataFrame of ``rows`` (dicts or a frame) in the hiva layout with stable dtypes, the
        same from a CSV round trip: ints, floats, nullable Int8 classes."""
        import pandas as pd

        df = pd.DataFrame(rows, columns=self.columns)
        df = df.astype({"input": "string", "frame": "int64", "timestamp": "float64",
                        "face_id": "int64", "confidence": "float64", "success": "int64",
                        **dict.fromkeys(BOX_COLUMNS, "float64")})
        for c in prob_columns(self.outputs):
            df[c] = df[c].astype("float64")
        for c in class_columns(self.outputs):
            df[c] = df[c].astype("Int8")
        return self._with_attrs(df)

    def _with_attrs(self, df):
        """``df`` with the unreadable files so far and the thresholds in ``df.attrs``."""
        df.attrs["unreadable"] = list(self.unreadable)
        df.attrs["thresholds"] = dict(zip(prob_columns(self.outputs), self.thresholds))
        return df


def run(cfg: PredictConfig) -> dict:
    """Score every frame of ``cfg.inputs`` and stream the rows to ``cfg.out``; returns a
    summary."""
    import time

    from hiva.predict.media import expand_inputs

    expand_inputs(cfg.inputs)  # a missing path fails now, not after loading the model
    det = Detector(cfg.checkpoint, fold=cfg.fold, device=cfg.device, batch_size=cfg.batch_size,
                   align=cfg.align, threshold=cfg.threshold, text_bank=cfg.text_bank,
                   weights=cfg.weights, model_threads=cfg.model_threads,
                   max_faces=cfg.max_faces)
    print(det.describe(), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    det.detect(list(cfg.inputs), progress=cfg.progress, skip_frames=cfg.skip_frames,
               save=cfg.out, format=cfg.format)
    secs = time.perf_counter() - t0
    bad = det.unreadable
    rows, faces = det.counts["rows"], det.counts["faces"]
    no_face = det.counts["rows"] - faces
    summary = {"rows": rows, "faces": faces, "no_face": no_face, "unreadable": len(bad),
               "seconds": round(secs, 3), "out": str(cfg.out)}
    print(f"wrote {rows} rows to {cfg.out}: {faces} faces scored, {no_face} frames without a "
          f"face, {len(bad)} unreadable files skipped ({faces / max(secs, 1e-9):.1f} faces/s)",
          file=sys.stderr, flush=True)
    for path, why in bad[:20]:
        print(f"unreadable: {path} ({why})", file=sys.stderr)
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more unreadable files", file=sys.stderr)
    return summary
