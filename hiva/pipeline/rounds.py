"""One shard of the generation stage: rounds of prompts for the AUs still short of their target,
each round in chunks that are sampled, parsed, filtered and staged atomically.

Staged in ``OUT/.staging/shard-SSS/``: ``rRRR-cCCCC.parquet`` (the chunk's kept candidates,
CORPUS_SCHEMA) + ``rRRR-cCCCC.done`` (JSON counts), ``style`` (the prompt style ``auto`` chose)
and, last, ``shard.done`` (the shard's summary). A rerun reads finished chunks back instead of
sampling them again; each chunk's seed derives from (seed, shard, round, chunk), so a resumed run
produces what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hiva.corpora.dedup import NearDupIndex
from hiva.corpora.filters import check, cut_at_label, parse_reply, tidy
from hiva.corpora.schema import CORPUS_SCHEMA, SCHEMA_VERSION, STAGING, text_hash
from hiva.facs import AUS
from hiva.pipeline.backends.base import Generator, SamplingConfig
from hiva.pipeline.generate_config import GenerateConfig
from hiva.pipeline.prompt_plan import (
    PromptSpec,
    auto_style,
    check_style,
    prompt_list,
    render_prompt,
    reply_prefix,
    style_templates,
)
from hiva.runtime import atomic_write, write_text_atomic

# chat replies under --json (vLLM): {"descriptions": [...]}
JSON_REPLY = {
    "type": "object",
    "properties": {"descriptions": {"type": "array", "items": {"type": "string"}}},
    "required": ["descriptions"],
}


def _h(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def shard_dir(out: Path, shard: int) -> Path:
    return out / STAGING / f"shard-{shard:03d}"


class _Progress:
    """Per-AU dedup state of one shard, fed chunk by chunk in a fixed order."""

    def __init__(self, cfg: GenerateConfig):
        self.kept = {a: 0 for a in cfg.aus}
        self._seen: set[tuple[int, str]] = set()
        self._near: dict[int, NearDupIndex] = {}
        self._dcfg = cfg.dedup_config()

    def feed(self, rows: list[dict]) -> int:
        new = 0
        for r in rows:
            key = (r["au"], r["text_hash"])
            if key in self._seen:
                continue
            self._seen.add(key)
            if self._dcfg.minhash:
                idx = self._near.setdefault(r["au"], NearDupIndex(self._dcfg))
                if not idx.add(r["text"]):
                    continue
            self.kept[r["au"]] += 1
            new += 1
        return new


def generate_shard(cfg: GenerateConfig, out: Path, gen: Generator) -> None:
    """Run this shard's rounds (resuming staged chunks) and write its ``shard.done``. ``gen`` is
    loaded only when a chunk must be sampled or ``--prompt-style auto`` must be decided."""
    from tqdm import tqdm

    sdir = shard_dir(out, cfg.shard_index)
    sdir.mkdir(parents=True, exist_ok=True)
    if (sdir / "shard.done").exists():
        return
    loaded = False

    def ensure_loaded():
        nonlocal loaded
        if not loaded and gen.model is None:
            gen.load()
        loaded = True

    style = cfg.prompt_style
    # The prompt style decides the templates, so it must be known before planning; "auto" needs
    # the model. A resumed run reads it back instead of loading the model for nothing.
    style_file = sdir / "style"
    if style == "auto" and style_file.exists():
        style = style_file.read_text().strip()
    elif style == "auto":
        ensure_loaded()
        style = auto_style(gen)
        check_style(cfg, style, gen)
        write_text_atomic(style_file, style)

    templates = style_templates(cfg, style)
    lists = {au: prompt_list(au, templates, cfg.seed) for au in cfg.aus}
    for au in cfg.aus:  # this shard's slice of the prompt space
        lists[au] = [p for p in lists[au] if p.index % cfg.num_shards == cfg.shard_index]
    target = cfg.per_au if cfg.num_shards == 1 else math.ceil(cfg.per_au * 1.2 / cfg.num_shards)
    max_new = cfg.max_new_tokens or (40 if style == "completion" else 400)
    state = _Progress(cfg)
    pointer = {au: 0 for au in cfg.aus}
    stats: dict[str, Any] = {"drops": {}, "drops_by_au": {}, "candidates": 0, "tokens": 0,
                             "seconds": 0.0}
    total = target * len(cfg.aus)
    bar = tqdm(total=total, unit="desc", desc=f"generate shard {cfg.shard_index}",
               dynamic_ncols=True, smoothing=0.1)
    rounds_used = 0
    for r in range(cfg.max_rounds):
        need = {au: target - state.kept[au] for au in cfg.aus if state.kept[au] < target}
        if not need:
            break
        rounds_used = r + 1
        plan: list[PromptSpec] = []
        for au, deficit in need.items():
            # Prompts for the deficit at the AU's survival rate so far (distinct rows kept per
            # prompt; about one per two replies before any), with a quarter more for luck, at
            # most a batch: a strict verifier or a model that repeats itself needs more prompts
            # per row, and rounds of one or two prompts batch badly.
            used = pointer[au]
            rate = state.kept[au] / used if used else cfg.samples_per_prompt / 2
            rate = max(rate, 1 / (2 * cfg.samples_per_prompt))
            k = max(1, min(cfg.batch_size, math.ceil(1.25 * deficit / rate)))
            avail = lists[au][pointer[au] : pointer[au] + k]
            pointer[au] += len(avail)
            plan.extend(avail)
        if not plan:
            break  # every needed AU has used its whole prompt space
        chunks = [plan[i : i + cfg.batch_size] for i in range(0, len(plan), cfg.batch_size)]
        bar.set_postfix(round=r + 1, aus_left=len(need))
        for c, chunk in enumerate(chunks):
            stem = sdir / f"r{r:03d}-c{c:04d}"
            ppath, dpath = stem.with_suffix(".parquet"), stem.with_suffix(".done")
            if dpath.exists():
                rows = _read_rows(ppath)
                info = json.loads(dpath.read_text())
            else:
                ensure_loaded()
                seed = int(_h(cfg.seed, cfg.shard_index, r, c)[:8], 16)
                rows, info = run_chunk(gen, chunk, cfg, style, max_new, seed)
                _write_rows(ppath, rows)
                write_text_atomic(dpath, json.dumps(info))
            for k2, v in info["drops"].items():
                stats["drops"][k2] = stats["drops"].get(k2, 0) + v
            for au_s, d in info.get("drops_by_au", {}).items():  # absent in older chunks
                mine = stats["drops_by_au"].setdefault(au_s, {})
                for k2, v in d.items():
                    mine[k2] = mine.get(k2, 0) + v
            stats["candidates"] += info["candidates"]
            stats["tokens"] += info.get("tokens", 0)
            stats["seconds"] += info.get("seconds", 0.0)
            new = state.feed(rows)
            bar.update(min(new, max(0, total - bar.n)))
    bar.close()
    short = {au: state.kept[au] for au in cfg.aus if state.kept[au] < target}
    summary = {
        "rounds": rounds_used,
        "target_per_au": target,
        "kept_per_au": state.kept,
        "short_of_target": short,
        "style": style,
        **stats,
    }
    if gen.model is not None or loaded:
        summary.update(llm=gen.name, llm_fingerprint=gen.fingerprint(), backend=gen.backend)
    else:
        summary.update(_read_llm_info(sdir))
    write_text_atomic(sdir / "shard.done", json.dumps(summary))


def run_chunk(gen: Generator, chunk: list[PromptSpec], cfg: GenerateConfig, style: str,
              max_new: int, seed: int) -> tuple[list[dict], dict]:
    """Sample ``chunk``'s prompts, parse and filter the replies: (kept rows, counts)."""
    fcfg = cfg.filter_config()
    sampling = SamplingConfig(
        n=cfg.samples_per_prompt,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=max_new,
        seed=seed,
        stop=("\n",) if style == "completion" else (),
        json_schema=JSON_REPLY if cfg.json_output and style == "chat" else None,
    )
    prompts = [render_prompt(p, style, cfg.descriptions_per_reply) for p in chunk]
    t0 = time.perf_counter()
    replies = gen.generate(prompts, sampling)
    seconds = time.perf_counter() - t0
    tokens = gen.count_tokens([r for rs in replies for r in rs])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    same = {"llm": gen.name, "llm_fingerprint": gen.fingerprint(), "backend": gen.backend,
            "temperature": cfg.temperature, "top_p": cfg.top_p, "seed": seed}
    rows: list[dict] = []
    drops: dict[str, int] = {}
    by_au: dict[str, dict[str, int]] = {}  # JSON keys: the AU number as a string
    candidates = 0
    for p, prompt, reps in zip(chunk, prompts, replies):
        phash = _h(json.dumps(prompt, sort_keys=True))
        prefix = reply_prefix(prompt)
        for si, reply in enumerate(reps):
            items = parse_reply(prefix + reply)
            mine = by_au.setdefault(str(p.au), {})
            if not items:
                drops["unparseable"] = drops.get("unparseable", 0) + 1
                mine["unparseable"] = mine.get("unparseable", 0) + 1
            for item_i, raw in enumerate(items):
                candidates += 1
                text = tidy(cut_at_label(raw) if style == "completion" else raw)
                reason = check(text, p.au, fcfg)
                if reason:
                    drops[reason] = drops.get(reason, 0) + 1
                    mine[reason] = mine.get(reason, 0) + 1
                    continue
                mine["kept"] = mine.get("kept", 0) + 1
                rows.append({
                    "row_id": _h(phash, si, item_i, text),
                    "au": p.au,
                    "au_name": AUS[p.au].name,
                    "text": text,
                    "text_hash": text_hash(text),
                    "template_id": p.template.id,
                    "template_hash": p.template.hash,
                    "axes": json.dumps(p.axes.as_record(), sort_keys=True),
                    **same,
                    "sample_idx": si,
                    "prompt_hash": phash,
                    "shard": cfg.shard_index,
                    "created_at": now,
                    "schema_version": SCHEMA_VERSION,
                })
    info = {"seed": seed, "drops": drops, "drops_by_au": by_au, "candidates": candidates,
            "tokens": tokens,
            "seconds": round(seconds, 3), "prompts": len(chunk)}
    return rows, info


def _read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _write_rows(path: Path, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA)
    atomic_write(path, lambda p: pq.write_table(table, p))


def _read_llm_info(sdir: Path) -> dict:
    """llm, llm_fingerprint and backend of a shard whose chunks were all staged earlier."""
    for f in sorted(sdir.glob("*.parquet")):
        t = pq.read_table(f, columns=["llm", "llm_fingerprint", "backend"])
        if t.num_rows:
            return t.slice(0, 1).to_pylist()[0]
    return {}
