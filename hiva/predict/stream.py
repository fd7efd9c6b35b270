"""The prediction stream behind ``Detector.detect``, in stages that overlap: a decode thread
(``hiva.predict.media``: PyAV, itself frame-threaded), a detect thread that finds and aligns the
faces of each decoded frame (``hiva.predict.faces``: MediaPipe, which releases the GIL), and
scorer threads that turn full batches of faces into the model's input and score them
(``scorer_plan``); the caller's thread builds the rows, a batch at a time, in input order.
benchmarks/bench_predict.py measures it.

Only the scorer threads run torch: each thread that calls torch gets its own OpenMP team, and
two teams on a machine with few cores spin against each other. The detect thread hands them face
pixels (an aligned crop is 256×256×3 bytes), which ``Detector.to_batch`` transforms a batch at a
time; only a face image over ``RAW_PIXELS`` (a whole large frame without alignment) is turned into
its (smaller) model input there, so the queues' memory stays bounded."""

from __future__ import annotations

import queue
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hiva.predict.faces import NO_BOX
from hiva.predict.media import Unreadable, count_frames, expand_inputs, iter_frames
from hiva.predict.settings import check, detect_checks
from hiva.predict.table import BOX_COLUMNS, class_columns, intensity_columns, prob_columns
from hiva.predict.tracks import NO_TRACK, Tracks

RAW_PIXELS = 512 * 512  # a face image larger than this crosses the queue as its model input
MAX_SCORERS = 2  # batches the model scores at once on a CPU (``scorer_plan``)
DECODED = 4  # decoded frames waiting for the detect thread (a 4K frame is 25 MB)


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """``q.put(item)`` unless ``stop`` is set first (False then)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            pass
    return False


def _get(q: queue.Queue, stop: threading.Event):
    """``q.get()``, or ("end", None) once ``stop`` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            pass
    return "end", None


def decode(sources, every: int, out: queue.Queue, stop: threading.Event,
           start: tuple[int, int] = (0, 0)) -> None:
    """Decode thread: ("frame", (i, Frame)) for every frame of every source in input order, i the
    source's place; a source that cannot be read (or stops part way) is ("unreadable", (i, path,
    reason)) after the frames it gave; ("error", exception) hands anything else on; ("end",
    None) last. ``start`` (i, k): begin at frame k of source i (a resumed run: earlier sources
    are passed over, and the video's earlier frames decoded but not converted or scored)."""
    try:
        for i, src in enumerate(sources):
            if i < start[0]:
                continue
            first = start[1] if i == start[0] else 0
            try:
                for fr in iter_frames(src, every, first):
                    if not _put(out, ("frame", (i, fr)), stop):
                        return
            except Unreadable as e:
                if not _put(out, ("unreadable", (i, src.path, str(e))), stop):
                    return
    except BaseException as e:  # noqa: BLE001 — handed on to the caller's thread to re-raise
        _put(out, ("error", e), stop)
    finally:
        _put(out, ("end", None), stop)


def produce(det, frames: queue.Queue, q: queue.Queue, stop: threading.Event) -> None:
    """Detect thread: the decode thread's items in order, each frame as (source, index,
    timestamp, faces, source's place), faces a list of (face image, confidence, box), empty
    when no face was found. A face image is uint8 pixels, or the model's input tensor when it is
    over ``RAW_PIXELS``. Decoding the next frames overlaps detecting this one."""
    try:
        while True:
            kind, item = _get(frames, stop)
            if kind == "end":
                return
            if kind != "frame":  # unreadable, error: in their place in the order
                q.put((kind, item))
                continue
            i, fr = item
            faces = [(img if img.shape[0] * img.shape[1] <= RAW_PIXELS
                      else det.to_tensor(img), conf, box)
                     for img, conf, box in det.faces(fr.rgb)]
            q.put(("frame", (fr.source, fr.frame, fr.timestamp, faces, i)))
    except BaseException as e:  # noqa: BLE001 — handed to the caller's thread to re-raise
        q.put(("error", e))
    finally:
        q.put(("end", None))


def rows_of(det, pending: list[tuple], probs, tracks: Tracks) -> list[dict]:
    """Table rows (hiva layout) of ``pending`` frames, their faces' probabilities in order: one
    row per face, one per faceless frame; ``tracks`` gives the faces their track ids."""
    pcols, ccols = prob_columns(det.outputs), class_columns(det.outputs)
    rcols, n = intensity_columns(det.intensity_aus), len(pcols)  # probs[:, n:]: intensities
    th = np.asarray(det.thresholds, dtype=np.float64)
    rows, j = [], 0
    for src, frame, ts, faces, i in pending:
        base = {"input": src, "frame": frame, "timestamp": round(float(ts), 6)}
        boxes = [tuple(round(v, 2) for v in box) for _, _, box in faces]
        ids = tracks.update(i, frame, boxes)  # the rounded boxes: the ones the table holds
        if not faces:
            rows.append({**base, "face_id": 0, "track_id": NO_TRACK, "confidence": 0.0,
                         "success": 0, **dict(zip(BOX_COLUMNS, NO_BOX))})
        for k, (_, conf, _) in enumerate(faces):
            p = probs[j]
            j += 1
            row = {**base, "face_id": k, "track_id": ids[k], "confidence": round(conf, 6),
                   "success": 1, **dict(zip(BOX_COLUMNS, boxes[k]))}
            row.update(zip(pcols, p[:n].tolist()))
            row.update(zip(ccols, (p[:n] >= th).astype(int).tolist()))
            row.update(zip(rcols, p[n:].tolist()))
            rows.append(row)
    return rows


def scorer_plan(det) -> tuple[int, int | None]:
    """(batches the model scores at once, torch threads each; None: leave torch's setting).
    On a CPU, ``det.model_threads`` threads (None: torch's count) are split into up to
    ``MAX_SCORERS`` batches in flight: a batch on a thread of its own runs the model with no
    OpenMP barrier to spin at while the decode and detect threads hold a core (on 2 cores, two
    single-threaded batches scored 1.0-1.24x the faces/s of one batch on 2 threads;
    benchmarks/bench_predict.py prints both). On a GPU: one."""
    import torch

    if det.loaded.device.type != "cpu":
        return 1, None
    want = det.model_threads or torch.get_num_threads()
    n = max(1, min(want, MAX_SCORERS))
    return n, max(1, want // n)


def iter_batches(det, inputs, progress: bool = False, batch_size: int | None = None,
                 skip_frames: int = 1, *, start: tuple[int, int] = (0, 0),
                 tracks: Tracks | None = None, done: int = 0):
    """Yield ``det``'s table (hiva layout, typed) a batch of rows at a time, in input order;
    each batch's ``attrs["end"]`` is (source's place, frame) of its last frame, and
    ``attrs["sources"]`` each row's source's place. Unreadable files
    are appended to ``det.unreadable`` as (path, reason), their sources' places to
    ``det.unreadable_at``. Batches are scored in scorer threads (``scorer_plan``) and come back
    in order.

    A resumed run (``hiva.predict.resume``) passes ``start`` (source's place, first frame to
    score), the ``tracks`` rebuilt from the rows written so far, and the frames ``done`` (shown
    as done on the progress bar). A resumed stream forms the same batches as an uninterrupted
    one from that point when ``start`` follows the end of a batch."""
    import torch
    from tqdm import tqdm

    bs = det.batch_size if batch_size is None else batch_size
    check(detect_checks(False, batch_size=bs, skip_frames=skip_frames))
    sources = expand_inputs(inputs)
    total = None
    if progress:
        counts = [count_frames(s, skip_frames) for s in sources]
        total = None if any(c is None for c in counts) else sum(counts)
    bar = tqdm(total=total, initial=done, unit="frame", desc="predict", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    tracks = Tracks(det.track_gap) if tracks is None else tracks
    q: queue.Queue = queue.Queue(maxsize=4 * bs)
    stop = threading.Event()
    threads = torch.get_num_threads()
    n_scorers, each = scorer_plan(det)

    def one_scorer() -> None:
        # torch's thread count is per thread once set (OpenMP); the caller's is put back below
        if each is not None:
            torch.set_num_threads(each)

    def score(frames: list[tuple]):
        xs = [x for fr in frames for x, _, _ in fr[3]]
        if not xs:
            return frames, None
        probs = det._probs(det.forward(det.to_batch(xs)))
        return frames, np.round(probs.astype(np.float64), 6)

    def rows(done) -> object:
        frames, probs = done.result()
        bar.update(len(frames))
        df = det._typed(rows_of(det, frames, probs, tracks))
        df.attrs["end"] = (frames[-1][4], frames[-1][1])
        df.attrs["sources"] = [fr[4] for fr in frames for _ in (fr[3] or (None,))]
        return df

    decoded: queue.Queue = queue.Queue(maxsize=DECODED)
    decoder = threading.Thread(target=decode, args=(sources, skip_frames, decoded, stop, start),
                               name="hiva-decode", daemon=True)
    worker = threading.Thread(target=produce, args=(det, decoded, q, stop), name="hiva-detect",
                              daemon=True)
    pool = ThreadPoolExecutor(n_scorers, thread_name_prefix="hiva-score",
                              initializer=one_scorer)
    decoder.start()
    worker.start()
    pending: list[tuple] = []  # frames in order; their faces wait for the batch
    inflight: deque = deque()  # futures of batches being scored, in input order
    try:
        n_faces = 0
        while True:
            kind, item = q.get()
            if kind == "end":
                break
            if kind == "error":
                raise item
            if kind == "unreadable":
                det.unreadable.append(item[1:])
                det.unreadable_at.append(item[0])
                continue
            pending.append(item)
            n_faces += len(item[3])
            # a full batch of faces, or a long run of frames without one (keeps output and the
            # progress bar moving through faceless stretches)
            if n_faces >= bs or len(pending) >= 8 * bs:
                inflight.append(pool.submit(score, pending))
                pending, n_faces = [], 0
                # one batch waits for a free scorer; rows go out as soon as the oldest is done
                while len(inflight) > n_scorers or (inflight and inflight[0].done()):
                    yield rows(inflight.popleft())
        if pending:
            inflight.append(pool.submit(score, pending))
        while inflight:
            yield rows(inflight.popleft())
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)
        while worker.is_alive():  # unblock a detect thread waiting on a full queue
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        decoder.join()
        bar.close()
