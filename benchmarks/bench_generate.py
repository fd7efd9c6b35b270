"""Generation throughput of the CPU default (SmolLM2-135M GGUF through transformers) and the
pipeline's overhead over the raw backend.

1. Raw backend tokens/s at batch 1, 8, 32 on the same rendered completion prompts (sampling,
   no stop strings, fixed max_new_tokens, so every batch decodes the same number of steps).
2. The whole stage (``generate.run`` with the model already loaded) on a small bp4d job: wall
   time vs the time spent inside ``Generator.generate`` (summed per chunk). Overhead = the rest:
   prompt rendering, parsing, filters, dedup, Parquet writes, the final pass.

    python benchmarks/bench_generate.py [--per-au 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-au", type=int, default=6)
    ap.add_argument("--new-tokens", type=int, default=32)
    a = ap.parse_args()

    from hiva.pipeline.backends.base import SamplingConfig, resolve_llm
    from hiva.pipeline.backends.transformers_backend import TransformersGenerator
    from hiva.pipeline.generate import run
    from hiva.pipeline.generate_config import GenerateConfig
    from hiva.pipeline.prompt_plan import prompt_list, render_prompt
    from hiva.prompts.render import load_templates

    t0 = time.perf_counter()
    gen = TransformersGenerator(resolve_llm(None))
    gen.load()
    print(f"load: {time.perf_counter() - t0:.1f} s")
    tpl = load_templates(None, "completion")
    prompts = [render_prompt(p, "completion", 5) for p in prompt_list(12, tpl, 0)[:32]]
    n_prompt = sum(len(gen.tokenizer(p)["input_ids"]) for p in prompts) / len(prompts)
    print(f"prompt length: {n_prompt:.0f} tokens on average")
    gen.generate(prompts[:2], SamplingConfig(n=1, max_new_tokens=4))  # warm-up
    for bs in (1, 8, 32):
        s = SamplingConfig(n=1, temperature=0.7, top_p=0.9, max_new_tokens=a.new_tokens)
        t = time.perf_counter()
        gen.model.generation_config.min_new_tokens = a.new_tokens  # decode exactly N tokens
        gen.generate(prompts[:bs], s)
        dt = time.perf_counter() - t
        print(f"batch {bs:>2}: {bs * a.new_tokens / dt:7.1f} generated tok/s "
              f"({dt:.1f} s for {bs}×{a.new_tokens} tokens)")
    gen.model.generation_config.min_new_tokens = None

    with tempfile.TemporaryDirectory() as d:
        cfg = GenerateConfig(out=d, aus="bp4d", per_au=a.per_au)
        t = time.perf_counter()
        res = run(cfg, generator=gen)
        wall = time.perf_counter() - t
        m = json.load(open(f"{d}/_manifest.json"))
    inside = m["generation_seconds"]
    print(f"stage: {res['rows']} rows in {wall:.1f} s = {res['rows'] / wall:.2f} rows/s; "
          f"{inside:.1f} s inside the backend ({m['generated_tokens'] / inside:.1f} tok/s)")
    print(f"pipeline overhead: {100 * (wall - inside) / wall:.1f}% of wall time (goal <= 10%)")
    print(f"raw backend on the same prompts: {res['rows'] / inside:.2f} rows/s -> "
          f"stage/raw = {inside / wall:.2f}")


if __name__ == "__main__":
    main()
