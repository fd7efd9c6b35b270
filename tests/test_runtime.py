"""hiva.runtime: the one atomic writer, and the dtype rules every stage shares."""

from __future__ import annotations

import pytest

from hiva.errors import HivaError
from hiva.runtime import DTYPES, atomic_write, weights_dtype


def test_atomic_write_keeps_the_old_file_when_the_writer_dies(tmp_path):
    f = tmp_path / "x.json"
    atomic_write(f, lambda p: p.write_text("old"))

    def dies(p):
        p.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(f, dies)
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_write_makes_a_folder_whole_or_not_at_all(tmp_path):
    out = tmp_path / "cache" / "model"

    def dies(p):
        p.mkdir(parents=True)
        (p / "config.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(out, dies)
    assert not out.exists() and list((tmp_path / "cache").iterdir()) == []

    def save(p):
        p.mkdir(parents=True)
        (p / "config.json").write_text("{}")

    atomic_write(out, save)
    assert (out / "config.json").read_text() == "{}"


def test_weights_dtype():
    import torch

    assert DTYPES == ("auto", "bf16", "fp16", "fp32")
    assert weights_dtype("fp32", "cpu") is torch.float32
    assert weights_dtype("bf16", "cuda:1") is torch.bfloat16
    assert weights_dtype("auto", "meta") is torch.float32  # no native bf16 known: fp32
    with pytest.raises(HivaError, match="--dtype int8: choose auto, bf16, fp16, fp32"):
        weights_dtype("int8", "cpu")


def test_one_device_rule_for_every_stage(monkeypatch):
    """``resolve_device`` is the rule the trainer, the predictor, the text encoders and the LLM
    backend share: auto picks a visible GPU, a named GPU that is not there is one line."""
    import torch

    from hiva.runtime import Dist, pick_device, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    for pref in ("cuda", "cuda:1"):
        with pytest.raises(HivaError, match=f"--device {pref} but no CUDA GPU is visible"):
            resolve_device(pref)
        with pytest.raises(HivaError, match="no CUDA GPU is visible"):
            pick_device(pref, Dist())
    assert pick_device("auto", Dist()) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
