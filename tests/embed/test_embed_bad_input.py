"""hiva embed with bad --out, an empty corpus, and no network: one clear error, before any
encoding, nothing of the user's overwritten."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from hiva.corpora.schema import CORPUS_SCHEMA, data_file
from hiva.errors import HivaError
from hiva.pipeline.embed import EmbedConfig, run
from hiva.textbank import encoders
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


# --------------------------------------------------------------------------- EmbedConfig checks
BAD_CONFIG = [
    ({"corpus": None}, "corpus is missing"),
    ({"corpus": "  "}, "corpus is missing"),
    ({"out": ""}, "out is empty"),
    ({"encoder": ""}, "encoder is empty"),
    ({"batch_size": 0}, "batch_size must be ≥ 1, got 0"),
    ({"batch_size": True}, "batch_size must be ≥ 1"),
    ({"device": "gpu"}, "device 'gpu' must be auto, cpu, mps, cuda or cuda:N"),
    ({"device": "cuda:x"}, "device 'cuda:x' must be"),
    ({"dtype": "fp8"}, "dtype 'fp8' must be one of auto, bf16, fp16, fp32"),
    ({"max_length": 0}, r"max_length \(tokens\) must be ≥ 1"),
    ({"normalize": "yes"}, "normalize must be true or false"),
    ({"cache_dir": ""}, "cache_dir is empty"),
    ({"num_shards": 0}, "num_shards must be ≥ 1, got 0"),
    ({"num_shards": 3, "shard_index": 3}, r"shard_index must be in 0\.\.2 \(one run per shard\), "
                                          "got 3"),
    ({"shard_index": -1}, r"shard_index must be in 0\.\.0"),
    ({"semantic_dedup": 0.0}, r"semantic_dedup 0\.0 must be a cosine in \(0, 1\]"),
    ({"semantic_dedup": 1.5}, r"semantic_dedup 1\.5 must be a cosine in \(0, 1\]"),
    ({"flush_every": 0}, r"flush_every \(batches\) must be ≥ 1, got 0"),
    ({"aus": "1,2"}, "aus is for --names-only"),
    ({"names_only": True, "aus": "AU99"}, "aus 'AU99' must be an AU set"),
]


@pytest.mark.parametrize("bad,rule", BAD_CONFIG, ids=[next(iter(b)) + "=" + repr(b[next(iter(b))])
                                                      for b, _ in BAD_CONFIG])
def test_each_bad_config_value_is_one_line(tmp_path, bad, rule):
    kw = {"corpus": str(tmp_path / "c"), "out": str(tmp_path / "b"), **bad}
    with pytest.raises(HivaError) as e:
        EmbedConfig(**kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("bad embed config: ")
    assert msg.endswith("; fix the config or flag")
    assert re.search(rule, msg), msg


def test_good_configs_pass():
    EmbedConfig(corpus="c")
    EmbedConfig(names_only=True, aus="bp4d", device="cuda:1", dtype="bf16", semantic_dedup=1.0)
    EmbedConfig(corpus="c", num_shards=4, shard_index=3, max_length=8, device="cpu")


def test_bad_flag_is_one_line_before_any_work(tmp_path):
    p = subprocess.run([sys.executable, "-m", "hiva.cli", "embed", "--corpus", str(tmp_path / "c"),
                        "--out", str(tmp_path / "b"), "--num-shards", "2", "--shard-index", "2"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "bad embed config: shard_index must be in 0..1" in p.stderr
    assert not (tmp_path / "b").exists()


def test_set_reaches_a_key_without_a_flag(tmp_path, tiny_st):
    """--set flush_every=1 (no --flush-every flag) lands in the run's config; a bad one is the
    config's one line."""
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1, 2)))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HIVA_CACHE=str(tmp_path / "cache"))
    base = [sys.executable, "-m", "hiva.cli", "embed", "--corpus", str(corpus), "--out",
            str(tmp_path / "b"), "--encoder", tiny_st, "--dtype", "fp32"]
    p = subprocess.run([*base, "--set", "flush_every=1", "--set", "semantic_dedup=0.99"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man["config"]["flush_every"] == 1 and man["config"]["semantic_dedup"] == 0.99
    p = subprocess.run([*base, "--set", "flush_every=0"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "bad embed config: flush_every (batches) must be ≥ 1, got 0" in p.stderr


def test_encoder_that_does_not_load_is_one_line(tmp_path):
    empty = tmp_path / "enc"
    empty.mkdir()
    with pytest.raises(HivaError, match=r"^could not load sentence-transformers encoder .*enc "
                                        r"\(ValueError: .*\); pass a local model folder"):
        encoders.load_encoder(str(empty), device="cpu", dtype="fp32")
    with pytest.raises(HivaError, match=r"^could not load CLIP text encoder .*enc \(\w+Error: "
                                        r".*\); pass a local folder with a CLIP model"):
        encoders.load_encoder("clip:" + str(empty), device="cpu", dtype="fp32")


def test_a_bundle_killed_before_its_manifest_is_taken_back_by_its_rerun(tmp_path, tiny_st,
                                                                        monkeypatch):
    """Killed after embeddings.safetensors and index.parquet but before manifest.json, the
    rerun refused the folder as another tool's (issue 31); it is marked first now, and the
    rerun writes the whole bundle."""
    import hiva.pipeline.embed as embed
    from hiva.runtime import WRITING

    corpus = write_corpus(tmp_path / "c", make_rows(3, (1,)))
    out = tmp_path / "bank"
    real = embed.write_text_atomic

    def killed(path, text):
        if path.name == "manifest.json":
            raise KeyboardInterrupt
        real(path, text)

    monkeypatch.setattr(embed, "write_text_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, corpus, tiny_st, out))
    assert (out / "embeddings.safetensors").exists() and not (out / "manifest.json").exists()
    monkeypatch.setattr(embed, "write_text_atomic", real)
    m = run(_cfg(tmp_path, corpus, tiny_st, out))
    assert m["rows"] == 3 and not (out / WRITING).exists()
    assert {p.name for p in out.iterdir()} == {"embeddings.safetensors", "index.parquet",
                                               "manifest.json", "config.yaml"}


def test_unusable_rows_are_counted_said_and_skipped(tmp_path, tiny_st, capsys):
    """A corpus edited by hand: two rows without text and one of an AU FACS does not define.
    Every reader (embed, corpus stats) skips those three, says so in one line, and keeps the
    rest (stats raised an AttributeError traceback; embed dropped the empty ones unsaid and
    embedded AU 999 as an AU)."""
    from hiva.corpora.io import load_corpus
    from tests.helpers import invoke

    write_corpus(tmp_path / "c", [(1, "brows go up"), (1, ""), (1, "inner brows rise"),
                                  (2, "   "), (999, "outer brows up")])
    df = load_corpus(tmp_path / "c")
    assert sorted(df["text"]) == ["brows go up", "inner brows rise"]
    assert df.attrs["skipped"] == {"no text": 2, "an AU FACS does not define (999)": 1}
    said = capsys.readouterr().err
    assert "skipped 3 of 5 rows (2 with no text; 1 with an AU FACS does not define (999))" in said
    m = run(_cfg(tmp_path, tmp_path / "c", tiny_st, tmp_path / "b"))
    assert m["rows"] == 2 and m["rows_in_corpus"] == 5 and m["count_per_au"] == {"1": 2}
    assert m["rows_skipped"] == df.attrs["skipped"]
    code, out = invoke("corpus", "stats", tmp_path / "c", "--no-identifiability")
    assert code == 0 and "Traceback" not in out, out
