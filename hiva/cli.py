"""The ``hiva`` command line. Each area registers its commands; this module stays import-light so
``hiva --help`` answers fast (heavy libraries are imported inside the commands)."""

from __future__ import annotations

import importlib
import sys

import typer

from hiva import __version__
from hiva.errors import HivaError

app = typer.Typer(
    name="hiva",
    help="Facial Action Unit detection with language priors (HiVA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Modules exposing ``register(app)``; order is the order of ``hiva --help``.
_PARTS = ("hiva.pipeline.generate_cli", "hiva.data.cli", "hiva.model.cli",
          "hiva.train.cli", "hiva.train.sweep_cli", "hiva.pipeline.embed_cli",
          "hiva.corpora.cli", "hiva.predict.cli", "hiva.app.cli")
for _name in _PARTS:
    importlib.import_module(_name).register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hiva {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True,
                                       callback=_print_version,
                                       help="Print the version and exit.")):
    """Facial Action Unit detection with language priors (HiVA)."""


def main() -> None:
    try:
        app()
    except HivaError as e:
        typer.echo(f"hiva: error: {e}", err=True)
        sys.exit(1)
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # A path the user named cannot be written or read as asked: one line, not a traceback.
        where = e.filename or "a path"
        fix = {PermissionError: "pick a folder you can write to (or fix its permissions)",
               IsADirectoryError: "pass a file path there, not a folder",
               NotADirectoryError: "a part of the path is a file; pass a folder path",
               FileExistsError: "pass a path that is not taken, or remove it"}[type(e)]
        typer.echo(f"hiva: error: {where}: {e.strerror or e}; {fix}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
