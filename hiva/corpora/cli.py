"""``hiva corpus``: push, export, stats, merge (heavy imports inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from hiva.config import SET_HELP, load_config
from hiva.corpora.reading import format_reading, read_rows
from hiva.runtime import output_file
from hiva.textbank.encoders import load_encoder

corpus_app = typer.Typer(help="Share and inspect description corpora (Hugging Face datasets).",
                         no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(corpus_app, name="corpus")


@corpus_app.command("push")
def push_cmd(
    corpus: str = typer.Argument(..., help="Corpus folder, exported folder or Hub id."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset OWNER/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the dataset private."),
    config_name: str | None = typer.Option(None, "--config-name",
                                           help="Config of the dataset (default: the LLM name)."),
    license: str | None = typer.Option(None, "--license",
                                       help="License in the card (default: kept, or cc-by-4.0)."),
):
    """Push a corpus to the Hub (Parquet under data/<config>/, dataset card)."""
    from hiva.corpora.hub import push

    r = push(corpus, repo_id, config_name=config_name, private=private, license=license)
    typer.echo(f"pushed {r['rows']} rows to {r['repo_id']} as config {r['config_name']}")


@corpus_app.command("export")
def export_cmd(
    corpus: str = typer.Argument(..., help="Corpus folder, exported folder or Hub id."),
    to: Path = typer.Option(..., "--to", help="Output folder (the Hub layout)."),
    config_name: str | None = typer.Option(None, "--config-name",
                                           help="Config of the dataset (default: the LLM name)."),
    license: str | None = typer.Option(None, "--license",
                                       help="License in the card (default: kept, or cc-by-4.0)."),
):
    """Write a corpus in the Hub layout into a local folder (load with datasets.load_dataset)."""
    from hiva.corpora.hub import export

    r = export(corpus, to, config_name=config_name, license=license)
    typer.echo(f"exported {r['rows']} rows to {r['out']} as config {r['config_name']} "
               f"(configs: {', '.join(r['configs'])})")


@corpus_app.command("stats")
def stats_cmd(
    corpus: str = typer.Argument(..., help="Corpus folder, exported folder or Hub id."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG chart here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write all figures as JSON here."),
    encoder: str | None = typer.Option(None, "--encoder",
                                       help="Sentence encoder for identifiability "
                                            "(default: shipped all-MiniLM-L6-v2)."),
    config_name: str | None = typer.Option(None, "--config-name",
                                           help="Config of an exported/Hub dataset."),
    samples: int = typer.Option(3, "--samples", help="Sample descriptions shown per AU."),
    no_identify: bool = typer.Option(False, "--no-identifiability",
                                     help="Skip the encoder (no identifiability figure)."),
    read: int = typer.Option(0, "--read", min=0,
                             help="Only print N rows drawn with --seed, each with the "
                                  "verifier's verdict on every clause (a worksheet to mark)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the --read draw."),
):
    """Rows per AU/axis, length, distinct-n, dedup, samples, identifiability, contamination;
    with --read N: N rows with the verifier's clause verdicts."""
    from hiva.corpora.stats import corpus_stats, format_stats, plot_stats

    if read:
        from hiva.corpora.io import load_corpus

        typer.echo(format_reading(read_rows(load_corpus(corpus, config_name=config_name), read,
                                            seed), seed))
        return

    for path, flag, suffix in ((json_out, "--json", ".json"), (plot, "--plot", ".png")):
        if path is not None:  # before the figures are computed
            output_file(path, flag, (suffix,))
    enc = None
    if encoder is not None and not no_identify:
        enc = load_encoder(encoder)
    s = corpus_stats(corpus, encoder=enc, samples=samples, config_name=config_name,
                     identify=not no_identify)
    typer.echo(format_stats(s))
    if json_out:
        json_out.write_text(json.dumps(s, indent=2, default=str))
    if plot:
        plot_stats(s, plot)
        typer.echo(f"plot: {plot}")


@corpus_app.command("merge")
def merge_cmd(
    corpora: list[str] = typer.Argument(..., help="Two or more corpora; the first wins a dup."),
    out: str = typer.Option(..., "--out", help="Folder for the merged corpus."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of MergeConfig."),
    threshold: float | None = typer.Option(None, "--threshold",
                                           help="MinHash Jaccard threshold (default 0.7)."),
    no_minhash: bool = typer.Option(False, "--no-minhash", help="Exact dedup only."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace a corpus already in --out."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
):
    """Union of corpora with exact + MinHash dedup per AU across them, provenance kept."""
    from hiva.corpora.merge import MergeConfig, run

    cfg = load_config(MergeConfig, config, sets, sources=tuple(corpora), out=out,
                      threshold=threshold, minhash=False if no_minhash else None,
                      overwrite=overwrite or None)
    m = run(cfg)
    d = m["dedup"]
    typer.echo(f"merged {d['input']} rows from {len(cfg.sources)} corpora into {m['rows']} "
               f"({d['exact_duplicates']} exact, {d['near_duplicates']} near duplicates) "
               f"-> {cfg.out}")
