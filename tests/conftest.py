"""Fixtures every test folder shares."""

from __future__ import annotations

import os
import socket

import pytest


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """Folder of a tiny trained Llama (``tests/tiny_models.py``)."""
    from tests.tiny_models import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def short_templates(tmp_path_factory):
    """Template folder with the one prompt the tiny Llama continues."""
    from tests.tiny_models import write_short_templates

    return write_short_templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory) -> str:
    """Folder of a tiny sentence-transformer (2-layer BERT, hidden 32, a word-level vocab)."""
    from tests.tiny_models import build_tiny_st

    return build_tiny_st(tmp_path_factory.mktemp("tiny_st"))


@pytest.fixture(scope="session")
def tiny_clip_model(tmp_path_factory) -> str:
    """Folder of a tiny randomly initialised CLIPModel (image and text towers) with tokenizer."""
    from tests.tiny_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip_model"))


@pytest.fixture
def no_hub_env(tmp_path) -> dict:
    """The environment of a machine without network and without ``HF_HUB_OFFLINE``: the Hub
    endpoint is a closed port on this machine (nothing leaves it), the Hub cache is empty."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",
                                                            "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"))
    return env


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A folder nothing can be created or written in. Tests run as root here, which ignores mode
    bits, so creating and writing under it also fail the way the OS fails for everyone else."""
    import errno
    from pathlib import Path

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real_mkdir, real_write = Path.mkdir, Path.write_bytes

    def denied(p):
        if ro in Path(p).parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))

    def mkdir(self, *a, **k):
        denied(self)
        return real_mkdir(self, *a, **k)

    def write_bytes(self, data):
        denied(self)
        return real_write(self, data)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    yield ro
    ro.chmod(0o755)
