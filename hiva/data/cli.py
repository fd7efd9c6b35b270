"""``hiva data ...``: import, synth, align, pack, folds. Parses flags and calls the library."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from hiva.config import SET_HELP, load_config
from hiva.errors import HivaError
from hiva.facs import AU_SETS, parse_aus
from hiva.runtime import output_file, writable_dir

data_app = typer.Typer(help="Face data: import, synthesise, align, pack, folds.",
                       no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _report(report, n: int, out: Path) -> None:
    typer.echo(f"wrote {n} rows to {out}")
    if hasattr(report, "lines"):
        for line in report.lines():
            typer.echo(line)
        return
    for why, k in sorted(report.items()):
        if k:
            typer.echo(f"skipped {k}: {why}")


@data_app.command("import")
def import_(
    source: str = typer.Argument(..., help="bp4d | disfa | megraphau | csv"),
    file: Path | None = typer.Argument(None, help="CSV file (for csv)."),
    out: Path = typer.Option(..., "--out", help="Manifest (.parquet) to write."),
    root: Path | None = typer.Option(None, "--root", help="BP4D/DISFA release folder."),
    images: Path | None = typer.Option(None, "--images", help="Image folder override."),
    labels: Path | None = typer.Option(None, "--labels", help="Label folder override."),
    intensity: Path | None = typer.Option(
        None, "--intensity", help="BP4D: AU_INT intensity folder (default: ROOT/AUCoding/AU_INT "
        "where it exists)."),
    lists: Path | None = typer.Option(None, "--lists", help="ME-GraphAU list folder."),
    threshold: int = typer.Option(2, "--threshold", help="DISFA: positive when intensity >= this."),
    aus: str | None = typer.Option(None, "--aus", help="ME-GraphAU AU order (bp4d, disfa, 1,2,..)"),
    path_column: str = typer.Option("path", "--path-column", help="CSV: image path column."),
) -> None:
    """Build a manifest from BP4D, DISFA, ME-GraphAU lists or a CSV."""
    output_file(out, "--out", (".parquet",))  # before reading anything
    from hiva.data import importers
    from hiva.data.manifest import write_manifest

    src = source.lower()
    if src in ("bp4d", "disfa"):
        if root is None and (images is None or labels is None):
            raise HivaError(f"{src} needs --root DIR (or both --images and --labels)")
        if intensity is not None and src != "bp4d":
            raise HivaError("--intensity is BP4D's AU_INT folder; DISFA's label files hold the "
                            "intensities already: drop --intensity")
        fn = importers.import_bp4d if src == "bp4d" else importers.import_disfa
        kw = {"intensity": intensity} if src == "bp4d" else {"threshold": threshold}
        df, rep = fn(root or Path("."), images, labels, **kw)
    elif src == "megraphau":
        if lists is None or images is None:
            raise HivaError("megraphau needs --lists DIR and --images DIR")
        df, rep = importers.import_megraphau(lists, images, aus=parse_aus(aus) if aus else None)
    elif src == "csv":
        if file is None:
            raise HivaError("csv needs a file: hiva data import csv FILE --out MANIFEST")
        df, rep = importers.import_csv(file, path_column)
    else:
        raise HivaError(f"unknown source {source!r}; use bp4d, disfa, megraphau or csv")
    write_manifest(df, out, {"source": src})
    _report(rep, len(df), out)


@data_app.command("export-megraphau")
def export_megraphau(
    manifest: Path = typer.Argument(..., help="Manifest to export."),
    out: Path = typer.Option(..., "--out", help="Folder for the list files."),
    name: str | None = typer.Option(None, "--name",
                                    help="List file prefix; default BP4D / DISFA when the "
                                         "subjects are that dataset's, else DATA."),
    scheme: str = typer.Option("auto", "--scheme",
                               help="auto | manifest | bp4d | disfa | kfold (auto: the "
                                    "manifest's fold column, else the standard folds, else kfold)"),
    k: int = typer.Option(3, "--k"),
    seed: int = typer.Option(0, "--seed"),
    aus: str | None = typer.Option(None, "--aus",
                                   help="AU order; default the BP4D/DISFA set for those lists, "
                                        "else the manifest's AUs"),
    images_root: Path | None = typer.Option(
        None, "--images-root", help="Write paths relative to this folder (ME-GraphAU's img/); "
                                    "default: the folder holding the <subject> folders."),
    relation: bool = typer.Option(True, "--relation/--no-relation",
                                  help="Also write *_train_AU_relation_fold<k>.txt (stage 2)."),
) -> None:
    """Write the lists ME-GraphAU's tools write: *_img_path_fold<k>.txt, *_label_fold<k>.txt,
    *_weight_fold<k>.txt (and the tools' *_train_weight_fold<k>.txt), *_AU_relation_fold<k>.txt.
    Fold k is ME-GraphAU's fold k (fold 1 tests part 3)."""
    from hiva.data.folds import assign_folds, resolve_scheme, standard_dataset
    from hiva.data.importers import export_megraphau as export
    from hiva.data.importers import infer_images_root
    from hiva.data.manifest import manifest_aus, read_manifest

    writable_dir(out, "--out")  # a file or an unwritable place: before reading anything
    df = read_manifest(manifest)
    used = resolve_scheme(df, scheme)
    dataset = standard_dataset(df)
    if name is None:
        name = dataset.upper() if dataset else "DATA"
    if aus:
        order = parse_aus(aus)
    elif name.lower() in AU_SETS and set(AU_SETS[name.lower()]) <= set(manifest_aus(df)):
        order = AU_SETS[name.lower()]
    else:
        order = manifest_aus(df)
    root = images_root or infer_images_root(df["path"].tolist(),
                                            df["subject"].astype(str).tolist())
    report: Counter = Counter()
    files = export(df, out, name, order, assign_folds(df, used, k, seed), root, relation, report)
    typer.echo(f"wrote {len(files)} list files to {out} ({name}, folds: {used}, AUs "
               f"{','.join(map(str, order))}; image paths relative to {root})")
    for why, n in sorted(report.items()):
        typer.echo(f"warning: {why}" + (f" ({n})" if n > 1 else ""))


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write (resumes if it exists)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of SynthConfig."),
    subjects: int | None = typer.Option(None, "--subjects", help="Identities (default 40)."),
    per_subject: int | None = typer.Option(None, "--per-subject", help="Images per identity."),
    seed: int | None = typer.Option(None, "--seed"),
    size: int | None = typer.Option(None, "--size", help="Image side in pixels (128..256)."),
    difficulty: float | None = typer.Option(None, "--difficulty", help="0 clear .. 1 subtle."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (0 = all cores)."),
    grid: bool | None = typer.Option(None, "--grid/--no-grid", help="Write per-AU grid PNGs."),
    cooccurrence: str | None = typer.Option(
        None, "--cooccurrence", help="emotions (default: prototypes, AUs fire together) | "
        "independent (each AU on by itself: no label predicts another)."),
    base_rate: float | None = typer.Option(
        None, "--base-rate", help="independent: each AU's probability of being on (0.3)."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Render a SYNTHETIC AU-labelled face set with a manifest."""
    from hiva.data.synth import SynthConfig, render_synthetic

    cfg = load_config(SynthConfig, config, sets, out=str(out), subjects=subjects,
                      per_subject=per_subject, seed=seed, size=size, difficulty=difficulty,
                      workers=workers, grid=grid, cooccurrence=cooccurrence,
                      base_rate=base_rate)
    path = render_synthetic(cfg.out, cfg.subjects, cfg.per_subject, cfg.seed, cfg.size,
                            cfg.difficulty, cfg.workers, cfg.grid, cfg.jpeg_quality,
                            cooccurrence=cfg.cooccurrence, base_rate=cfg.base_rate)
    typer.echo(f"wrote {cfg.subjects * cfg.per_subject} synthetic images and {path}")


@data_app.command("align")
def align(
    manifest: Path = typer.Argument(..., help="Manifest of raw frames."),
    out: Path = typer.Option(..., "--out", help="Folder for crops and the aligned manifest."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of AlignConfig."),
    size: int | None = typer.Option(None, "--size", help="Crop side (default 256)."),
    min_confidence: float | None = typer.Option(None, "--min-confidence"),
    pick: str | None = typer.Option(None, "--pick", help="largest | most-confident"),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Detect, align (eyes to canonical positions) and crop faces; skip frames with no face."""
    from hiva.data.align import AlignConfig, run

    cfg = load_config(AlignConfig, config, sets, manifest=str(manifest), out=str(out), size=size,
                      min_confidence=min_confidence, pick=pick)
    typer.echo(f"wrote {run(cfg)}")


@data_app.command("pack")
def pack(
    manifest: Path = typer.Argument(..., help="Manifest whose frames to pack."),
    out: Path = typer.Option(..., "--out", help="Folder for the shards and the pack's manifest "
                                                "(a rerun resumes)."),
    size: int = typer.Option(256, "--size", help="Side in pixels: the trainer's resize "
                                                 "(input size × 8/7: 256 for 224)."),
    fill: str = typer.Option("124,116,104", "--fill",
                             help="R,G,B that pads frames that are not square (the trainer's: "
                                  "the ImageNet mean; 128,128,128 for Lite0)."),
    shard_size: int = typer.Option(2048, "--shard-size", help="Frames per shard file."),
    workers: int = typer.Option(2, "--workers", help="Decoding processes (0: this one)."),
) -> None:
    """Decode a manifest's frames once into uint8 shards that training maps into memory:
    `hiva train --data OUT/manifest.parquet` then reads no image file."""
    from hiva.data.pack import pack_manifest

    try:
        rgb = tuple(int(v) for v in fill.split(","))
    except ValueError:
        raise HivaError(f"--fill {fill!r} must be three whole numbers R,G,B, e.g. 124,116,104")\
            from None
    r = pack_manifest(manifest, out, size, rgb, shard_size, workers)
    typer.echo(f"packed {r['frames']} frames ({r['shards']} shards, {r['reused']} kept from "
               f"before, {r['bytes'] / 2**20:.1f} MiB) into {r['manifest']}; train with --data "
               f"{r['manifest']}")
    if r["skipped"]:
        path, why = r["skipped_example"]
        typer.echo(f"skipped {r['skipped']} frames that could not be read, e.g. {path} ({why})")
    if r["padded"]:
        typer.echo(f"{r['padded']} frames were not square: padded with {fill} (the trainer pads "
                   "with its backbone's mean; `hiva train` warns when it differs)")


@data_app.command("verify-pack")
def verify_pack(pack: Path = typer.Argument(..., help="Folder `hiva data pack` wrote.")) -> None:
    """Check every shard of a pack against the SHA-256 in its pack.json (after copying it)."""
    from hiva.data.pack import verify_pack as verify

    bad = verify(pack)
    if bad:
        shown = ", ".join(bad[:3]) + (" …" if len(bad) > 3 else "")
        raise HivaError(f"{len(bad)} shard(s) of {pack} are missing or damaged ({shown}); copy "
                        "them again, or rerun `hiva data pack` with the same --out (it rewrites "
                        "only those)")
    typer.echo(f"{pack}: every shard matches its SHA-256")


@data_app.command("folds")
def folds(
    manifest: Path = typer.Argument(..., help="Manifest."),
    scheme: str = typer.Option("auto", "--scheme",
                               help="auto | manifest | bp4d | disfa | kfold (auto: the "
                                    "manifest's fold column, else the standard folds, else kfold)"),
    k: int = typer.Option(3, "--k"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Print the fold scheme used, then each fold's test subjects/frames and the per-AU
    occurrence rates of its training split."""
    from hiva.data.folds import assign_folds, describe_scheme, occurrence_rates, resolve_scheme
    from hiva.data.manifest import manifest_aus, read_manifest

    df = read_manifest(manifest)
    used = resolve_scheme(df, scheme)
    f = assign_folds(df, used, k, seed)
    typer.echo(f"scheme: {describe_scheme(used, k, seed)}")
    aus = manifest_aus(df)
    for fold in sorted(set(f)):
        test = df[f == fold]
        rates = occurrence_rates(df[f != fold], aus)
        typer.echo(f"fold {fold}: test {test['subject'].nunique()} subjects / {len(test)} frames; "
                   "train rates " + " ".join(f"AU{a}={r:.2f}" for a, r in zip(aus, rates)))
