"""Helpers every test folder shares (``from tests.helpers import run_cli, invoke``)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args, check: bool = True, env: dict | None = None,
            **kw) -> subprocess.CompletedProcess:
    """Run the real CLI, ``python -m hiva.cli ARGS``, in a subprocess (what a user runs): one
    thread, offline Hub, unbuffered output; ``check`` fails the test with both streams shown."""
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
             **(env or {}))
    r = subprocess.run([sys.executable, "-m", "hiva.cli", *map(str, args)], capture_output=True,
                       text=True, env=e, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"hiva {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def invoke(*args) -> tuple[int, str]:
    """Run the CLI in this process (so a test's monkeypatch reaches it): (exit code, its output
    and the exception's line, if any)."""
    from typer.testing import CliRunner

    from hiva.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.output + (str(r.exception) if r.exception else "")
