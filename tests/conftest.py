"""Fixtures every test folder shares."""

from __future__ import annotations

import os
import socket

import pytest


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
