"""Stage 1: generate a description corpus (``hiva generate-descriptions``).

Reads: the FACS table, the prompt templates, an LLM. Writes into ``OUT``:
- ``.staging/``: each shard's staged chunks, written atomically, so a killed run resumes with
  nothing doubled and nothing lost (see ``rounds``), and the settings' hash (``config_hash``).
- ``data/train-*.parquet`` (CORPUS_SCHEMA) + ``_manifest.json`` + ``_config.yaml``: the final
  corpus (layout in hiva/corpora/schema.py), after dedup over all shards (exact, then MinHash LSH,
  per AU), with ``--judge``: rated by an LLM judge (``judge``; its cache in ``.staging/judge/``),
  capped at ``per_au`` per AU.

Generation goes in rounds: each round gives every AU that still lacks ``per_au`` distinct
survivors (per shard: its share) a few more prompts, until all have enough or ``max_rounds`` ends.
Modules: ``generate_config`` (the settings), ``prompt_plan`` (prompts, style, template checks),
``rounds`` (one shard's work), ``judge`` (the optional judge pass), ``shards`` (launching every
shard: ``--launcher``; their logs in ``.staging/launch/``), this one (checks, ``--out``, the
final pass).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from hiva.config import config_dict, config_hash
from hiva.corpora.dedup import dedup_frame
from hiva.corpora.io import upgrade_rows, write_corpus
from hiva.corpora.schema import (
    CORPUS_KIND,
    CORPUS_SCHEMA,
    MANIFEST,
    SCHEMA_VERSION,
    STAGING,
    check_out_dir,
    remove_corpus,
)
from hiva.errors import HivaError
from hiva.pipeline.backends import check_llm, make_generator, select_backend
from hiva.pipeline.backends.base import resolve_llm
from hiva.pipeline.generate_config import NOT_IN_HASH, GenerateConfig
from hiva.pipeline.judge import judge_and_select, judge_ref, same_model
from hiva.pipeline.prompt_plan import (
    auto_style,
    check_style,
    check_templates,
    style_why,
    warn,
)
from hiva.pipeline.rounds import generate_shard, shard_dir
from hiva.pipeline.shards import Launch, check_launch, launch_shards
from hiva.prompts.render import check_user_templates, load_templates, user_template_names
from hiva.runtime import writable_dir, write_text_atomic


def run(cfg: GenerateConfig, generator=None, merge: bool = True) -> dict:
    """Generate (this shard), then finalize when every shard is done (``merge=False``: never;
    the shard launcher merges). ``generator`` may be an already loaded backend (tests,
    benchmarks); one this run makes is unloaded at the end.

    Everything that can fail without a model load is checked before ``--out`` is touched; with
    ``--overwrite`` over earlier work the model is also loaded first (it is needed anyway), so a
    model that does not load costs nothing that was there."""
    chash = config_hash(cfg, NOT_IN_HASH)
    ref = validate(cfg, generator)
    jref = judge_ref(cfg)  # --judge's weights: checked before --out is touched, too
    out = Path(cfg.out)
    gen = generator
    try:
        if (cfg.overwrite and not cfg.finalize and gen is None
                and check_out_dir(out) == "corpus"):
            gen = _make_generator(cfg, ref)
            gen.load()
            if cfg.prompt_style == "auto":
                check_style(cfg, auto_style(gen), gen, warn_unused=False)  # warned when used
        out = _prepare_out(cfg, chash)
        if not cfg.finalize and not (shard_dir(out, cfg.shard_index) / "shard.done").exists():
            if gen is None:
                gen = _make_generator(cfg, ref)  # loaded only if a chunk must be sampled
            generate_shard(cfg, out, gen)
        missing = [s for s in range(cfg.num_shards)
                   if not (shard_dir(out, s) / "shard.done").exists()]
        if missing and cfg.finalize:
            raise HivaError(
                f"shards {missing} of {cfg.num_shards} have not finished; run them "
                "(same command with --shard-index) before --finalize"
            )
        if missing or not merge:
            return {"status": "shard-done", "shard": cfg.shard_index, "waiting_for": missing}
        # The judge uses the generator when it is the same model, already loaded; else the
        # generator goes before the judge loads (one model in memory at a time).
        reuse = gen if same_model(cfg, gen, jref) else None
        if reuse is None and gen is not None and gen is not generator:
            gen.unload()
            gen = None  # unloaded once
        return finalize(cfg, out, chash, judge_gen=reuse, judge_ref=jref)
    finally:
        if gen is not None and gen is not generator:
            gen.unload()


def run_launched(cfg: GenerateConfig, opts: Launch) -> dict:
    """``--launcher``: every shard not yet done (``shard.done``; all of them with --overwrite
    over earlier work, as each shard's own --overwrite would) as ``--shard-index I --shard-only``
    jobs (hiva/pipeline/shards.py), then, once all are done, the ``--finalize`` merge here.
    Returns ``run``'s result, or ``{"status": "failed", "code": N}``."""
    out = Path(cfg.out)
    ldir = out / STAGING / "launch"
    target = check_launch("generate-descriptions", cfg, ldir, opts)
    validate(cfg)
    judge_ref(cfg)
    redo = cfg.overwrite and check_out_dir(out) == "corpus"
    _prepare_out(replace(cfg, finalize=True), config_hash(cfg, NOT_IN_HASH))  # its checks only

    def done(i: int) -> bool:
        return (shard_dir(out, i) / "shard.done").exists()

    code = launch_shards("generate-descriptions", cfg, ldir, opts, target, done,
                         ("--shard-only",), redo=redo)
    if code:
        return {"status": "failed", "code": code}
    return run(replace(cfg, finalize=True))


def validate(cfg: GenerateConfig, generator=None):
    """Every check that needs no model load, before ``--out`` is touched: the --llm spec (a GGUF
    file must parse; a Hub id needs the Hub or a cached copy), the templates of each style that
    may be used, and that user templates of the other style are not silently unused. Returns the
    ModelRef to load (None when a generator is given or nothing is generated)."""
    ref = None
    if generator is None and not cfg.finalize:
        ref = check_llm(resolve_llm(cfg.llm))
    styles = ("chat", "completion") if cfg.prompt_style == "auto" else (cfg.prompt_style,)
    user = user_template_names(cfg.templates)
    for style in styles:
        if cfg.prompt_style == "auto" and cfg.only_user_templates and not user[style]:
            continue  # only the style the model picks must have templates: checked once known
        check_templates(cfg, style)
    if cfg.prompt_style != "auto":
        for w in check_user_templates(cfg.templates, cfg.prompt_style, style_why(cfg)):
            warn(w)
    return ref


def _make_generator(cfg: GenerateConfig, ref):
    return make_generator(
        select_backend(cfg.backend),
        ref,
        device=cfg.device,
        dtype=cfg.dtype,
        tensor_parallel_size=cfg.tensor_parallel_size,
        trust_remote_code=cfg.trust_remote_code,
        seed=cfg.seed,
    )


def _prepare_out(cfg: GenerateConfig, chash: str) -> Path:
    """Make ``--out`` ready: refuse a folder hiva did not write; with --overwrite remove only
    what hiva wrote (this shard's work when sharded); refuse a rerun with other settings."""
    out = Path(cfg.out)
    state = check_out_dir(out)
    stamp = out / STAGING / "config_hash"
    if cfg.overwrite and state == "corpus" and not cfg.finalize:
        if cfg.shard_index == 0 and cfg.num_shards == 1:
            remove_corpus(out)
        else:
            shutil.rmtree(shard_dir(out, cfg.shard_index), ignore_errors=True)
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


def finalize(cfg: GenerateConfig, out: Path, chash: str, judge_gen=None, judge_ref=None) -> dict:
    """Dedup all shards' candidates per AU, judge them when ``cfg.judge`` is set (``judge_gen``:
    an already loaded judge model; see ``hiva.pipeline.judge``), cap at per_au, write the corpus
    and its manifest."""
    import pandas as pd

    frames, shard_info = [], []
    for s in range(cfg.num_shards):
        d = shard_dir(out, s)
        shard_info.append(json.loads((d / "shard.done").read_text()))
        for f in sorted(d.glob("r*-c*.parquet")):
            if f.with_suffix(".done").exists():
                frames.append(pq.read_table(f).to_pandas())
    df = pd.concat(frames, ignore_index=True) if frames else CORPUS_SCHEMA.empty_table().to_pandas()
    df = upgrade_rows(df)  # chunks staged by an older hiva lack the newer columns
    kept, dcounts = dedup_frame(df, cfg.dedup_config())
    judged = None
    if cfg.judge is not None:
        # Before the cap: a row the judge drops is replaced by the AU's next surplus row.
        capped, judged = judge_and_select(kept.reset_index(drop=True), cfg, out, judge_gen,
                                          judge_ref)
    else:
        capped = kept.groupby("au", sort=False, group_keys=False).head(cfg.per_au)
        capped = capped.assign(judge_score=None, judge_reason=None, judge=None)
    capped = capped.sort_values("au", kind="stable").reset_index(drop=True)
    dropped = (judged["dropped_below"] + judged["dropped_unscored"]) if judged else 0
    dcounts["over_target"] = len(kept) - len(capped) - dropped
    per_au = {int(a): int(n) for a, n in capped["au"].value_counts().sort_index().items()}
    drops: dict[str, int] = {}
    by_au: dict[str, dict[str, int]] = {}  # per AU: candidates kept by the filters, drops by reason
    for info in shard_info:
        for k, v in info.get("drops", {}).items():
            drops[k] = drops.get(k, 0) + v
        for a, d in info.get("drops_by_au", {}).items():
            mine = by_au.setdefault(a, {})
            for k, v in d.items():
                mine[k] = mine.get(k, 0) + v
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
        "templates": {t.id: t.hash for t in load_templates(
            cfg.templates, first.get("style", "completion"), only_user=cfg.only_user_templates)},
        "axes": ["perspective", "intensity", "context", "focus", "style"],
        "aus": list(cfg.aus),
        "rows": int(len(capped)),
        "rows_per_au": per_au,
        "short_of_target": short,
        "candidates": sum(i.get("candidates", 0) for i in shard_info),
        "filters": drops,
        "filters_by_au": {a: by_au[a] for a in sorted(by_au, key=int)},
        "dedup": dcounts,
        "rounds": [i.get("rounds") for i in shard_info],
        "generation_seconds": round(sum(i.get("seconds", 0.0) for i in shard_info), 1),
        "generated_tokens": sum(i.get("tokens", 0) for i in shard_info),
        "shards": cfg.num_shards,
        "judge": judged,  # None: no judge pass
        "schema": [f"{f.name}: {f.type}" for f in CORPUS_SCHEMA],
    }
    write_corpus(out, capped, manifest, cfg)
    return {"status": "done", **manifest}
