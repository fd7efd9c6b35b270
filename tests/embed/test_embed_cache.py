"""hiva embed: bundle, cache hits, invalidation, corrupt parts, shards, names bank, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from embed_helpers import make_rows, write_corpus

from hiva.errors import HivaError
from hiva.pipeline import encoders
from hiva.pipeline.embed import (
    EmbedConfig,
    encode_names_bank,
    load_text_bank,
    run,
)


@pytest.fixture
def count_calls(monkeypatch):
    """Counts texts sent to any encoder (wraps the real encode, the model still runs)."""
    seen = {"calls": 0, "texts": 0}
    for cls in (encoders.SentenceTransformerEncoder, encoders.ClipTextEncoder):
        orig = cls.encode

        def wrapped(self, texts, batch_size=64, _orig=orig):
            seen["calls"] += 1
            seen["texts"] += len(texts)
            return _orig(self, texts, batch_size)

        monkeypatch.setattr(cls, "encode", wrapped)
    return seen


def cfg(tmp_path, corpus, st, **kw):
    base = dict(corpus=str(corpus), out=str(tmp_path / "bundle"), encoder=st, dtype="fp32",
                cache_dir=str(tmp_path / "cache"), batch_size=8, flush_every=1)
    base.update(kw)
    return EmbedConfig(**base)


def test_bundle_matches_direct_encoding_and_rerun_encodes_nothing(tmp_path, tiny_st, count_calls):
    rows = make_rows(10, (1, 2, 12))
    corpus = write_corpus(tmp_path / "c", rows)
    m = run(cfg(tmp_path, corpus, tiny_st))
    assert m["rows"] == 30 and m["texts_encoded"] == 30 and m["dim"] == 32
    assert count_calls["texts"] == 30
    bank = load_text_bank(tmp_path / "bundle")
    assert bank.aus == (1, 2, 12) and bank.dim == 32
    assert all(bank.embeddings[a].shape == (10, 32) for a in bank.aus)
    assert bank.embeddings[1].dtype == torch.float32
    # vectors equal a direct encode of the same texts
    enc = encoders.load_encoder(tiny_st, dtype="fp32")
    direct = enc.encode(bank.texts[2], batch_size=8)
    np.testing.assert_allclose(bank.embeddings[2].numpy(), direct, atol=1e-5)
    assert np.allclose(np.linalg.norm(direct, axis=1), 1, atol=1e-4)
    before = count_calls["calls"]
    m2 = run(cfg(tmp_path, corpus, tiny_st))
    assert count_calls["calls"] == before  # zero encoder calls on a full-cache rerun
    assert m2["texts_encoded"] == 0 and m2["texts_from_cache"] == 30
    assert load_text_bank(tmp_path / "bundle").fingerprint == bank.fingerprint
    files = {p.name for p in (tmp_path / "bundle").iterdir()}
    assert {"embeddings.safetensors", "index.parquet", "manifest.json", "config.yaml"} <= files


def test_added_rows_encode_only_new(tmp_path, tiny_st, count_calls):
    rows = make_rows(10, (1, 2))
    run(cfg(tmp_path, write_corpus(tmp_path / "c1", rows[:15]), tiny_st))
    count_calls["texts"] = 0
    m = run(cfg(tmp_path, write_corpus(tmp_path / "c2", rows), tiny_st))
    assert count_calls["texts"] == 5 and m["texts_encoded"] == 5


def test_settings_change_invalidates(tmp_path, tiny_st, tiny_clip, count_calls):
    corpus = write_corpus(tmp_path / "c", make_rows(4, (1, 2)))
    run(cfg(tmp_path, corpus, tiny_st))
    for kw in ({"max_length": 8}, {"normalize": False}, {"encoder": "clip:" + tiny_clip}):
        count_calls["texts"] = 0
        m = run(cfg(tmp_path, corpus, tiny_st, **kw))
        assert count_calls["texts"] == 8 and m["texts_encoded"] == 8, kw
    bank = load_text_bank(tmp_path / "bundle")
    assert bank.dim == 16 and bank.encoder.startswith("clip:")
    m = run(cfg(tmp_path, corpus, tiny_st, normalize=False))
    assert m["texts_encoded"] == 0  # each setting keeps its own cache


def test_truncated_and_corrupt_cache_parts_are_recomputed(tmp_path, tiny_st, count_calls):
    corpus = write_corpus(tmp_path / "c", make_rows(8, (1, 2)))
    run(cfg(tmp_path, corpus, tiny_st))  # batch 8, flush every batch: 2 parts
    ref = load_text_bank(tmp_path / "bundle")
    parts = sorted((tmp_path / "cache").rglob("part-*.safetensors"))
    assert len(parts) == 2
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) - 100])  # truncated
    raw = bytearray(parts[1].read_bytes())
    raw[-5] ^= 0xFF  # one flipped byte in the vectors/keys
    parts[1].write_bytes(bytes(raw))
    count_calls["texts"] = 0
    m = run(cfg(tmp_path, corpus, tiny_st))
    assert count_calls["texts"] == 16 and len(m["cache_parts_recomputed"]) == 2
    again = load_text_bank(tmp_path / "bundle")
    for a in ref.aus:
        torch.testing.assert_close(again.embeddings[a], ref.embeddings[a])


def test_shards_are_disjoint_and_cover_all(tmp_path, tiny_st):
    corpus = write_corpus(tmp_path / "c", make_rows(10, (1, 2, 12)))
    ids = []
    for i in range(3):
        m = run(cfg(tmp_path, corpus, tiny_st, num_shards=3, shard_index=i))
        import pandas as pd

        idx = pd.read_parquet(tmp_path / "bundle" / f"shard-{i:05d}-of-00003" / "index.parquet")
        ids.append(set(idx["row_id"]))
        assert m["rows"] == len(idx)
    assert sum(map(len, ids)) == 30 and len(set().union(*ids)) == 30
    bank = load_text_bank(tmp_path / "bundle")
    assert sum(len(v) for v in bank.row_ids.values()) == 30


def test_missing_shard_and_missing_au_fail_clearly(tmp_path, tiny_st):
    corpus = write_corpus(tmp_path / "c", make_rows(5, (1, 2)))
    run(cfg(tmp_path, corpus, tiny_st, num_shards=2, shard_index=0))
    with pytest.raises(HivaError, match="1 of 2 shards"):
        load_text_bank(tmp_path / "bundle")
    run(cfg(tmp_path, corpus, tiny_st, out=str(tmp_path / "b2")))
    with pytest.raises(HivaError, match=r"AU\(s\) 4, 12.*hiva generate-descriptions --aus 4,12"):
        load_text_bank(tmp_path / "b2", aus=(1, 4, 12))
    assert load_text_bank(tmp_path / "b2", aus=(2,)).aus == (2,)
    with pytest.raises(HivaError, match="no embedding bundle"):
        load_text_bank(tmp_path / "nothing")


def test_semantic_dedup_drops_near_copies(tmp_path, tiny_st):
    rows = [(1, "the inner brow raise"), (1, "the inner brow raise ."), (1, "lip corner pull up"),
            (2, "the inner brow raise")]
    corpus = write_corpus(tmp_path / "c", rows)
    m = run(cfg(tmp_path, corpus, tiny_st, semantic_dedup=0.999))
    # "." is unknown to nothing: it maps to [UNK] so the copy is close but not identical;
    # the same text under another AU is never dropped (dedup is per AU).
    assert m["semantic_dedup"]["dropped_per_au"]["2"] == 0
    bank = load_text_bank(tmp_path / "bundle")
    assert len(bank.texts[2]) == 1
    assert len(bank.texts[1]) == 3 - m["semantic_dedup"]["dropped_per_au"]["1"]


def test_names_bank(tmp_path, tiny_st):
    bank = encode_names_bank((1, 12), tiny_st, cache_dir=str(tmp_path / "cache"), dtype="fp32")
    assert bank.texts[12] == ["AU12 Lip Corner Puller"]
    assert bank.embeddings[1].shape == (1, 32)
    m = run(EmbedConfig(names_only=True, aus="1,12", out=str(tmp_path / "names"), encoder=tiny_st,
                        dtype="fp32", cache_dir=str(tmp_path / "cache")))
    assert m["texts_encoded"] == 0  # same texts, same cache
    torch.testing.assert_close(load_text_bank(tmp_path / "names").embeddings[12],
                               bank.embeddings[12])


def test_kill9_mid_run_loses_nothing(tmp_path, tiny_st):
    corpus = write_corpus(tmp_path / "c", make_rows(200, (1, 2)))
    cache = tmp_path / "cache"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HIVA_SLOW_ENCODE="1")
    code = (
        "import time, sys\n"
        "from hiva.pipeline import encoders\n"
        "orig = encoders.SentenceTransformerEncoder.encode\n"
        "def slow(self, texts, batch_size=64):\n"
        "    time.sleep(0.3)\n"
        "    return orig(self, texts, batch_size)\n"
        "encoders.SentenceTransformerEncoder.encode = slow\n"
        "from hiva.pipeline.embed import EmbedConfig, run\n"
        f"run(EmbedConfig(corpus={str(corpus)!r}, out={str(tmp_path / 'b')!r}, "
        f"encoder={tiny_st!r}, dtype='fp32', cache_dir={str(cache)!r}, batch_size=8, "
        "flush_every=1))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.rglob("part-*.safetensors"))) < 3:
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    n_parts = len(list(cache.rglob("part-*.safetensors")))
    assert 3 <= n_parts < 50
    m = run(EmbedConfig(corpus=str(corpus), out=str(tmp_path / "b"), encoder=tiny_st,
                        dtype="fp32", cache_dir=str(cache), batch_size=8, flush_every=1))
    assert m["texts_from_cache"] >= 8 * n_parts - 8 and m["rows"] == 400
    assert m["texts_encoded"] + m["texts_from_cache"] == 400


def test_cli(tmp_path, tiny_st):
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1, 2)))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HIVA_CACHE=str(tmp_path / "cache"))
    hiva = [sys.executable, "-m", "hiva.cli"]
    r = subprocess.run([*hiva, "embed", "--corpus", str(corpus), "--out", str(tmp_path / "b"),
                        "--encoder", tiny_st, "--dtype", "fp32"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man["rows"] == 6 and man["config"]["encoder"] == tiny_st
    assert (tmp_path / "cache").is_dir()
    r = subprocess.run([*hiva, "embed", "--corpus", str(tmp_path / "none"), "--out",
                        str(tmp_path / "b")], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
