"""Where ``hiva predict``'s CPU time goes, stage by stage (Linux: reads /proc/self/task).

Runs ``hiva.Detector.detect`` on bench_predict.py's video (the astronaut, 640×480 H.264, an
untrained Lite0 run: weights do not change speed) and splits the process's CPU seconds into:
decode (FFmpeg's frame threads, which end with each video, plus PyAV in the decode thread), face
detection + alignment (MediaPipe's own threads plus the detect thread), pixels → model input
(``Detector.to_batch``), the model (scorer threads), table rows (``rows_of``, ``_typed``,
``_probs``) and the rest (queues, hand-offs, Python glue). The stages run at once on different
threads, so shares are of CPU, not of wall time; with the wall time and the cores they say what
bounds end to end: on 2 cores it is at most 2 × wall / CPU-per-face faces/s.

    .venv/bin/python benchmarks/profile_predict.py [--sizes 112 224] [--frames 160]
        [--batch 16] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench_predict import make_run, make_video

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def task_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each living thread of this process: {tid: (name, seconds)}."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in glob.glob("/proc/self/task/*"):
        try:
            with open(f"{d}/stat") as fh:
                stat = fh.read()
            with open(f"{d}/comm") as fh:
                name = fh.read().strip()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(Path(d).name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


class Meter:
    """Thread CPU seconds per stage, added up across threads."""

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self.tids: set[int] = set()  # the stream's threads, timed here
        self.lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.cpu[stage] += seconds
            if threading.current_thread() is not threading.main_thread():
                self.tids.add(threading.get_native_id())

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            c0 = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                self.add(stage, time.thread_time() - c0)
        return timed

    def wrap_iter(self, stage: str, gen_fn):
        def timed(*a, **k):
            it = gen_fn(*a, **k)
            while True:
                c0 = time.thread_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self.add(stage, time.thread_time() - c0)
                yield item
        return timed


def profile(det, video: Path, meter: Meter) -> dict:
    """One ``detect`` of ``video`` measured: wall, process CPU and CPU per stage."""
    meter.cpu.clear()
    meter.tids.clear()
    before = task_cpu()
    t0, c0 = time.perf_counter(), time.process_time()
    faces = int(det.detect(video)["success"].sum())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = task_cpu()
    grew = {t: (n, c - before.get(t, (n, 0.0))[1]) for t, (n, c) in after.items()}
    mediapipe = sum(c for n, c in grew.values() if n.startswith("mediapipe"))
    m = meter.cpu
    # CPU of threads that ended (FFmpeg's frame threads end with each video): the process's
    # CPU less the living threads' and the stream threads' (timed from inside)
    living = sum(c for t, (n, c) in grew.items() if t not in meter.tids)
    ended = max(0.0, cpu - living - m["decode thread"] - m["detect thread"] - m["to_batch"]
                - m["model"])
    stages = {
        "decode": ended + m["decode: PyAV"],
        "face detection + alignment": mediapipe + m["detect thread"],
        "pixels -> model input": m["to_batch"],
        "model": m["model"],
        "table rows": m["rows"],
    }
    stages["the rest (queues, hand-offs, glue)"] = cpu - sum(stages.values())
    return {"faces": faces, "wall": wall, "cpu": cpu, "stages": stages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    ap.add_argument("--frames", type=int, default=160)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from hiva.predict import Detector, stream

    meter = Meter()
    stream.iter_frames = meter.wrap_iter("decode: PyAV", stream.iter_frames)
    stream.rows_of = meter.wrap("rows", stream.rows_of)
    stream.decode = meter.wrap("decode thread", stream.decode)  # the whole thread's CPU
    stream.produce = meter.wrap("detect thread", stream.produce)
    tmp = Path(tempfile.mkdtemp(prefix="profile_predict_"))
    video = make_video(tmp / "astronaut.mp4", args.frames)
    print(f"video: {args.frames} frames 640x480 H.264; torch threads {args.threads}; "
          f"{os.cpu_count()} CPUs; batch {args.batch}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for size in args.sizes:
        det = Detector(make_run(tmp / f"run{size}", size, "auto"), align=True,
                       batch_size=args.batch, device="cpu")
        det.to_batch = meter.wrap("to_batch", det.to_batch)
        det.forward = meter.wrap("model", det.forward)
        det._probs = meter.wrap("model", det._probs)
        det._typed = meter.wrap("rows", det._typed)
        det.detect(video, skip_frames=max(1, args.frames // 4))  # warm-up
        runs = [profile(det, video, meter) for _ in range(args.repeats)]
        r = min(runs, key=lambda r: r["wall"])
        n, cpu = r["faces"], r["cpu"]
        print(f"\n{size} px: {n} faces in {r['wall']:.2f} s = {n / r['wall']:.1f} faces/s; "
              f"CPU {cpu:.2f} s = {cpu * 1000 / n:.1f} ms/face, {args.threads} cores "
              f"{cpu / args.threads / r['wall']:.0%} busy (the fastest of {args.repeats})")
        print(f"{'stage':40s} {'CPU s':>6s} {'share':>6s} {'ms/face':>8s}")
        for name, sec in r["stages"].items():
            print(f"{name:40s} {sec:6.2f} {sec / cpu:6.0%} {sec * 1000 / n:8.2f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
