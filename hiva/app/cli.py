"""``hiva app``: parse flags, build and serve the page (hiva.app.ui)."""

from __future__ import annotations

import typer

from hiva.app.ui import build, launch, require_gradio
from hiva.errors import HivaError
from hiva.predict.settings import check, detect_checks


def register(app: typer.Typer) -> None:
    app.command("app")(serve)


def serve(
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", help="A `hiva train` run, a `hiva export` folder or an export's "
                                   "Hub id (OWNER/NAME[@REVISION])."),
    corpus: str | None = typer.Option(
        None, "--corpus", help="Corpus folder, exported folder or Hub dataset id (default: the "
                               "corpus the checkpoint's text bank was embedded from)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to serve on; 0.0.0.0 opens it to the network."),
    port: int = typer.Option(7860, "--port", help="Port to serve on."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, mps."),
    align: bool | None = typer.Option(None, "--align/--no-align",
                                      help="Align faces first (default: as the model was "
                                           "trained)."),
    max_faces: int = typer.Option(4, "--max-faces", help="Faces scored per image, largest first."),
    max_video_seconds: float = typer.Option(60.0, "--max-video-seconds",
                                            help="Longer uploaded videos are refused."),
    skip_frames: int = typer.Option(1, "--skip-frames",
                                    help="Score every k-th frame of a video."),
    encoder: str | None = typer.Option(None, "--encoder",
                                       help="Sentence encoder for corpus search and stats "
                                            "(default: the shipped all-MiniLM-L6-v2)."),
    corpus_config: str | None = typer.Option(None, "--config-name",
                                             help="Config of an exported/Hub corpus."),
):
    """A local web page: detect AUs with maps on images and videos, browse and search the corpus,
    read the model's scores."""
    if port < 0 or port > 65535:
        raise HivaError(f"--port {port} is not a port; pass 1024-65535")
    check([*detect_checks(True, max_faces=max_faces, skip_frames=skip_frames),
           (max_video_seconds > 0, f"--max-video-seconds must be > 0, got {max_video_seconds}")])

    require_gradio()
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: serving on {host}: anyone who can reach this machine can use the "
                   "page", err=True)
    page = build(checkpoint, corpus, device=device, align=align, max_faces=max_faces,
                 max_video_seconds=max_video_seconds, skip_frames=skip_frames,
                 corpus_config=corpus_config, encoder=encoder)
    for line in page.hiva_problems:  # said here at once, not only inside a tab
        typer.echo(f"hiva app: warning: {line}", err=True)
    url = launch(page, host, port)
    typer.echo(f"hiva app: {url} (Ctrl+C stops it)")
    try:
        page.block_thread()
    finally:
        page.close()
