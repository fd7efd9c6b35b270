"""The prediction stream behind ``Detector.detect``: one background thread decodes, detects and
aligns (``hiva.predict.media``, ``hiva.predict.faces``) while the caller's thread scores full
batches, so the two overlap (benchmarks/bench_predict.py measures it); rows come out a batch at
a time, in input order."""

from __future__ import annotations

import queue
import sys
import threading

import numpy as np

from hiva.predict.faces import NO_BOX
from hiva.predict.media import Unreadable, count_frames, expand_inputs, iter_frames
from hiva.predict.settings import check, detect_checks
from hiva.predict.table import BOX_COLUMNS, class_columns, prob_columns


def produce(det, sources, every: int, q: queue.Queue, stop: threading.Event) -> None:
    """Background thread: decode → detect/align → tensors, in input order; one item per frame
    with a list of (tensor, confidence, box), empty when no face was found."""
    try:
        for src in sources:
            try:
                for fr in iter_frames(src, every):
                    if stop.is_set():
                        return
                    faces = [(det.to_tensor(img), conf, box)
                             for img, conf, box in det.faces(fr.rgb)]
                    q.put(("frame", (fr.source, fr.frame, fr.timestamp, faces)))
            except Unreadable as e:
                q.put(("unreadable", (src.path, str(e))))
    except BaseException as e:  # noqa: BLE001 — handed to the caller's thread to re-raise
        q.put(("error", e))
    finally:
        q.put(("end", None))


def rows_of(det, pending: list[tuple], probs) -> list[dict]:
    """Table rows (hiva layout) of ``pending`` frames, their faces' probabilities in order: one
    row per face, one per faceless frame."""
    pcols, ccols = prob_columns(det.outputs), class_columns(det.outputs)
    th = np.asarray(det.thresholds, dtype=np.float64)
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
    return rows


def iter_batches(det, inputs, progress: bool = False, batch_size: int | None = None,
                 skip_frames: int = 1):
    """Yield ``det``'s table (hiva layout, typed) a batch of rows at a time, in input order.
    Unreadable files are appended to ``det.unreadable`` as (path, reason)."""
    import torch
    from tqdm import tqdm

    bs = det.batch_size if batch_size is None else batch_size
    check(detect_checks(False, batch_size=bs, skip_frames=skip_frames))
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
    want = det.model_threads or threads
    if det.loaded.device.type == "cpu" and want != threads:
        torch.set_num_threads(want)
    worker = threading.Thread(target=produce, args=(det, sources, skip_frames, q, stop),
                              daemon=True)
    worker.start()
    pending: list[tuple] = []  # frames in order; their faces wait for the batch

    def flush():
        xs = [x for *_, faces in pending for x, _, _ in faces]
        probs = None
        if xs:
            probs = np.round(det._probs(det.forward(torch.stack(xs))).astype(np.float64), 6)
        rows = rows_of(det, pending, probs)
        bar.update(len(pending))
        pending.clear()
        return det._typed(rows)

    try:
        n_faces = 0
        while True:
            kind, item = q.get()
            if kind == "end":
                break
            if kind == "error":
                raise item
            if kind == "unreadable":
                det.unreadable.append(item)
                continue
            pending.append(item)
            n_faces += len(item[3])
            # a full batch of faces, or a long run of frames without one (keeps output and the
            # progress bar moving through faceless stretches)
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
