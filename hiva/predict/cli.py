"""``hiva predict``, ``hiva explain``, ``hiva export``, ``hiva import-checkpoint``: parse flags,
call the library (hiva.predict.detector / explain / export / import_graphau)."""

from __future__ import annotations

from pathlib import Path

import typer

from hiva.predict.export import export as export_run
from hiva.predict.import_graphau import import_checkpoint as import_run
from hiva.predict.settings import MIN_FACE, TRACK_GAP, PredictConfig


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("explain")(explain)
    app.command("export")(export)
    app.command("import-checkpoint")(import_checkpoint)


_CKPT = ("Run folder of `hiva train`, folder of `hiva export`, or the Hub id of an export, "
         "OWNER/NAME[@REVISION] (downloaded into the local Hub cache; offline, read from it).")
_ALIGN = ("Detect and align the face (MediaPipe) before scoring; --no-align scores whole "
          "images (already aligned crops). Default: as the model was trained (the synthetic set: "
          "off; aligned manifests: on).")


def predict(
    inputs: list[str] = typer.Argument(..., help="Images, folders of images/videos, videos."),
    checkpoint: str = typer.Option(..., "--checkpoint", help=_CKPT),
    out: Path = typer.Option(..., "--out", help="Table to write: .csv or .parquet."),
    batch_size: int = typer.Option(16, "--batch-size", help="Faces per model call."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    align: bool | None = typer.Option(None, "--align/--no-align", help=_ALIGN),
    fold: int | None = typer.Option(None, "--fold", help="Fold of a run folder (default: the "
                                    "lowest trained)."),
    threshold: str = typer.Option("auto", "--threshold", help="auto (the run's tuned per-AU "
                                  "thresholds when stored, else 0.5) or a number."),
    text_bank: str | None = typer.Option(None, "--text-bank", help="Embed bundle, when the "
                                         "run's is not reachable from here."),
    weights: str = typer.Option("best", "--weights", help="best | last"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    model_threads: int | None = typer.Option(None, "--model-threads", help="Torch CPU threads "
                                             "for the model (default: torch's); 1 leaves the "
                                             "decode and detect threads a core."),
    fmt: str = typer.Option("hiva", "--format", help="Table layout: hiva; openface (OpenFace "
                            "2's column order and names, read by py-feat's read_openface); feat "
                            "(py-feat's Detector layout, read by read_feat)."),
    max_faces: int | None = typer.Option(None, "--max-faces", help="Score at most this many "
                                         "faces per frame, the largest (default: every face)."),
    skip_frames: int = typer.Option(1, "--skip-frames", help="Score every k-th frame of a "
                                    "video (1: every frame)."),
    min_face: int = typer.Option(MIN_FACE, "--min-face", help="Skip (and count) faces under "
                                 "this many pixels a side, and strips; without alignment, "
                                 "whole frames."),
    track_gap: int = typer.Option(TRACK_GAP, "--track-gap", help="A face missing from more "
                                  "than this many scored frames of a video in a row gets a new "
                                  "track_id when it returns."),
    restart: bool = typer.Option(False, "--restart", help="Discard the parts a stopped run left "
                                 "beside --out (OUT.parts/) and start over; without it a rerun "
                                 "resumes them."),
) -> None:
    """AU probabilities and 0/1 decisions for every face of every frame, one row each (a frame
    without a face: one row, success=0). A killed run resumes when rerun."""
    from hiva.predict.detector import run as predict_run

    predict_run(PredictConfig(inputs=tuple(inputs), checkpoint=checkpoint, out=str(out),
                              batch_size=batch_size, device=device, align=align, fold=fold,
                              threshold=threshold, text_bank=text_bank, weights=weights,
                              progress=progress, model_threads=model_threads, format=fmt,
                              max_faces=max_faces, skip_frames=skip_frames,
                              min_face=min_face, track_gap=track_gap, restart=restart))


def explain(
    image: Path = typer.Argument(..., help="One image."),
    checkpoint: str = typer.Option(..., "--checkpoint", help=_CKPT),
    out: Path = typer.Option(..., "--out", help="Folder for AUxx.png, grid.png, explain.json."),
    top_k: int = typer.Option(3, "--top-k", help="Descriptions shown per AU."),
    device: str = typer.Option("auto", "--device"),
    align: bool | None = typer.Option(None, "--align/--no-align", help=_ALIGN),
    fold: int | None = typer.Option(None, "--fold"),
    text_bank: str | None = typer.Option(None, "--text-bank"),
    manifest: str | None = typer.Option(
        None, "--manifest", help="The manifest holding the image: its landmarks outline and "
        "score each AU's region (with --no-align)."),
) -> None:
    """Per-AU DDCA activation maps on the face, probabilities and best-matching descriptions;
    with landmarks, each AU's region outlined and the map scored against it."""
    from hiva.predict.explain import explain as explain_run

    rec = explain_run(image, checkpoint, out, fold=fold, device=device, align=align, top_k=top_k,
              text_bank=text_bank, manifest=manifest)
    typer.echo(f"wrote {len(rec['written'])} PNGs and explain.json to {out}")


def export(
    run_dir: Path = typer.Argument(..., help="Run folder of `hiva train`."),
    to: Path = typer.Option(..., "--to", help="Folder to write."),
    fold: int | None = typer.Option(None, "--fold", help="Which fold (default: the lowest "
                                    "trained)."),
    push: str | None = typer.Option(None, "--push", help="Also upload to the Hub model repo "
                                    "OWNER/NAME."),
    private: bool = typer.Option(False, "--private", help="With --push: a private repo."),
    text_bank: str | None = typer.Option(None, "--text-bank"),
    weights: str = typer.Option("best", "--weights", help="best | last"),
) -> None:
    """A self-contained model folder (weights, config, AU list, text bank, model card)."""
    info = export_run(run_dir, to, fold=fold, push=push, text_bank=text_bank, weights=weights,
               private=private)
    typer.echo(f"exported fold {info['fold']} of {run_dir} to {to}"
               + (f" and pushed it to {push}" if push else ""))


def import_checkpoint(
    source: str = typer.Argument(..., help="Whose checkpoint: megraphau (BP4D/DISFA, 12/8 AUs) "
                                 "or opengraphau (41 outputs: 27 AUs and 14 left/right)."),
    file: Path = typer.Argument(..., help="Their released .pth file (read with "
                                "weights_only=True: tensors only)."),
    arch: str = typer.Option(..., "--arch", help="The backbone it was trained with, as they "
                             "name it: resnet18, resnet50, resnet101, swin_transformer_tiny "
                             "(swin_tiny), swin_transformer_small, swin_transformer_base."),
    out: Path = typer.Option(..., "--out", help="Export folder to write (hiva predict / "
                             "evaluate / explain --checkpoint, hiva.Detector)."),
    aus: str = typer.Option(None, "--aus", help="Its AUs in output order (default: BP4D's 12, "
                            "DISFA's 8 or OpenGraphAU's 27, from the checkpoint's size)."),
    neighbours: int = typer.Option(None, "--neighbours", help="Stage 1's K (their "
                                   "neighbor_num; default 4, 3 for DISFA's 8 AUs)."),
    metric: str = typer.Option("dots", "--metric", help="Stage 1's neighbour metric: dots, "
                               "cosine, l1 (sum of |x-y|) or l2 (Euclidean; OpenGraphAU calls "
                               "it l1)."),
    no_align: bool = typer.Option(False, "--no-align", help="Score whole frames at prediction "
                                  "instead of MediaPipe-aligned face crops."),
):
    """Import ME-GraphAU's or OpenGraphAU's released weights as a hiva export folder."""
    info = import_run(source, file, arch, out, aus=aus, graph_k=neighbours, metric=metric,
               align=not no_align)
    mc = info["model_config"]
    typer.echo(f"imported {source} {arch} stage {mc['graph_stage']} ({len(info['columns'])} "
               f"outputs) to {out}; predict with `hiva predict VIDEO --checkpoint {out}`")
