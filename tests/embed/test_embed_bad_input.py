"""hiva embed with bad --out, an empty corpus, and no network: one clear error, before any
encoding, nothing of the user's overwritten."""

from __future__ import annotations

import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from hiva.corpora.schema import CORPUS_SCHEMA, data_file
from hiva.errors import HivaError
from hiva.pipeline import encoders
from hiva.pipeline.embed import EmbedConfig, run
from tests.embed.helpers import make_rows, write_corpus


@pytest.fixture
def encoded(monkeypatch):
    """Counts texts sent to the encoder: a refused run must encode nothing."""
    seen = {"texts": 0}
    orig = encoders.SentenceTransformerEncoder.encode

    def wrapped(self, texts, batch_size=64):
        seen["texts"] += len(texts)
        return orig(self, texts, batch_size)

    monkeypatch.setattr(encoders.SentenceTransformerEncoder, "encode", wrapped)
    return seen


def _cfg(tmp_path, corpus, st, out):
    return EmbedConfig(corpus=str(corpus), out=str(out), encoder=st, dtype="fp32",
                       cache_dir=str(tmp_path / "cache"), batch_size=8)


def test_out_is_a_file(tmp_path, tiny_st, encoded):
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1,)))
    f = tmp_path / "bank.txt"
    f.write_text("mine")
    with pytest.raises(HivaError, match=r"--out .*bank\.txt is a file, not a folder"):
        run(_cfg(tmp_path, corpus, tiny_st, f))
    assert f.read_text() == "mine" and encoded["texts"] == 0


def test_out_holding_another_tools_files_is_not_overwritten(tmp_path, tiny_st, encoded):
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1,)))
    out = tmp_path / "project"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "my web app"}')
    with pytest.raises(HivaError, match=r"holds manifest\.json that `hiva embed` did not write"):
        run(_cfg(tmp_path, corpus, tiny_st, out))
    assert (out / "manifest.json").read_text() == '{"name": "my web app"}'
    assert encoded["texts"] == 0
    run(_cfg(tmp_path, corpus, tiny_st, tmp_path / "b"))
    run(_cfg(tmp_path, corpus, tiny_st, tmp_path / "b"))  # its own bundle: a rerun is fine


def test_read_only_out(tmp_path, tiny_st, encoded, read_only_dir):
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1,)))
    ro = read_only_dir
    with pytest.raises(HivaError, match=r"cannot write into --out .*ro \(Permission denied\)"):
        run(_cfg(tmp_path, corpus, tiny_st, ro))
    with pytest.raises(HivaError, match=r"cannot create --out .*ro/sub \(Permission denied\)"):
        run(_cfg(tmp_path, corpus, tiny_st, ro / "sub"))
    assert encoded["texts"] == 0


def test_zero_row_corpus(tmp_path, tiny_st):
    corpus = write_corpus(tmp_path / "c", make_rows(1, (1,)))
    pq.write_table(CORPUS_SCHEMA.empty_table(), corpus / data_file(0, 1))
    with pytest.raises(HivaError, match=r"corpus .*c has no rows; generate it again"):
        run(_cfg(tmp_path, corpus, tiny_st, tmp_path / "b"))


def test_hub_encoder_without_network_fails_in_seconds(tmp_path, no_hub_env):
    """No HF_HUB_OFFLINE, no network (the endpoint is a closed port): one line, at once, instead
    of retried look-ups."""
    env = dict(no_hub_env)
    env.update(HIVA_CACHE=str(tmp_path / "cache"))
    corpus = write_corpus(tmp_path / "c", make_rows(2, (1,)))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "hiva.cli", "embed", "--corpus", str(corpus),
                        "--out", str(tmp_path / "b"), "--encoder", "someone/some-encoder"],
                       env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    # (datasets' progress bars for reading the corpus come before it)
    err = [line for line in p.stderr.splitlines() if "hiva: error" in line or "Retry" in line]
    assert p.returncode == 1 and len(err) == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1] == err[0]
    assert "encoder someone/some-encoder is not available here" in err[0]
    assert "is not reachable" in err[0] and "Traceback" not in p.stderr
    assert took < 30, took  # imports included; the retried look-ups took about a minute
