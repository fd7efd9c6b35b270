"""Dedup throughput and peak memory on synthetic paraphrases (10k / 100k / 1M rows).

Each size runs in its own process so peak RSS is that size's alone. Rows are paraphrase-like
sentences from a small grammar, spread over the 12 BP4D AUs, with ~30% near-duplicates injected.

    python benchmarks/bench_dedup.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

SUBJ = ["the inner brows", "the outer brows", "the lip corners", "the cheeks", "the upper lid",
        "the chin", "the lower lip", "the nostrils", "the eyelids", "the jaw"]
VERB = ["are pulled", "rise", "are drawn", "move", "are pushed", "lift", "drop", "tighten"]
DIR = ["upward", "downward", "outward", "inward", "together", "apart", "toward the ears",
       "toward the cheekbones"]
EXTRA = ["forming wrinkles across the forehead", "deepening the nasolabial furrow",
         "narrowing the eye opening", "exposing the teeth", "creating dimples beside the mouth",
         "giving a worried look", "making the face look tense", "in a slight, subtle way",
         "in a strong, marked way", "while the rest of the face stays relaxed"]


def make_rows(n: int, seed: int = 0):
    rng = random.Random(seed)
    aus = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    texts, groups = [], []
    for i in range(n):
        if i > 10 and rng.random() < 0.3:  # a near duplicate of an earlier row
            j = rng.randrange(i)
            words = texts[j].split()
            k = rng.randrange(len(words))
            words[k] = words[k].upper() if rng.random() < 0.5 else words[k] + "s"
            texts.append(" ".join(words))
            groups.append(groups[j])
            continue
        t = (f"{rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(DIR)}, {rng.choice(EXTRA)} "
             f"and {rng.choice(EXTRA)}, variant {rng.randrange(10**6)}.")
        texts.append(t[0].upper() + t[1:])
        groups.append(rng.choice(aus))
    return texts, groups


def one(n: int) -> dict:
    import pandas as pd

    from hiva.corpora.dedup import DedupConfig, dedup_frame

    texts, groups = make_rows(n)
    df = pd.DataFrame({"au": groups, "text": texts})
    t0 = time.perf_counter()
    kept, counts = dedup_frame(df, DedupConfig())
    secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": n, "seconds": round(secs, 2), "rows_per_s": round(n / secs),
            "peak_rss_mb": round(rss_mb), **counts}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--one", type=int)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one)))
        return
    results = []
    for n in map(int, a.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True,
                             text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{n:>9,} rows: {r['seconds']:>8.1f} s  {r['rows_per_s']:>8,} rows/s  "
              f"peak RSS {r['peak_rss_mb']:>6,} MB  kept {r['kept']:,}  "
              f"(exact {r['exact_duplicates']:,}, near {r['near_duplicates']:,})", flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"growth: {b['rows'] / a['rows']:.0f}x rows -> {b['seconds'] / a['seconds']:.1f}x "
              f"time (linear would be {b['rows'] / a['rows']:.0f}x)")
    print("goal: 1M rows in <= 180 s and <= 2048 MB on 2 cores")


if __name__ == "__main__":
    main()
