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

from hiva.errors import HivaError
from hiva.pipeline.embed import EmbedConfig, run
from hiva.textbank import encode_names_bank, encoders, load_text_bank
from tests.embed.helpers import make_rows, write_corpus


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
    t0, near, far = "the inner brow raise", "the inner brow raise .", "lip corner pull up"
    # "." maps to [UNK]: the near copy is close to t0 but not identical. The threshold sits
    # between the near copy's cosine and the unrelated text's, measured with the same encoder.
    enc = encoders.load_encoder(tiny_st, dtype="fp32")
    v = enc.encode([t0, near, far])
    c_near, c_far = float(v[0] @ v[1]), float(max(v[2] @ v[0], v[2] @ v[1]))
    assert c_far < c_near < 1 - 1e-6  # the premise: a near copy, not an exact one
    rows = [(1, t0), (1, t0), (1, near), (1, far), (2, t0)]
    corpus = write_corpus(tmp_path / "c", rows)
    m = run(cfg(tmp_path, corpus, tiny_st, semantic_dedup=(c_near + c_far) / 2))
    # the exact and the near copy go; the unrelated text and the same text under another AU
    # (dedup is per AU) stay
    assert m["semantic_dedup"]["dropped_per_au"] == {"1": 2, "2": 0}
    assert m["semantic_dedup"]["dropped"] == 2 and m["rows_kept"] == 3
    bank = load_text_bank(tmp_path / "bundle")
    assert bank.texts == {1: [t0, far], 2: [t0]}


def test_semantic_dedup_threshold_direction():
    from hiva.pipeline.embed import semantic_dedup

    emb = np.array([[1, 0], [1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    aus = np.array([1, 1, 1, 1])
    # cosine to the kept rows: row 1 = 1.0, row 2 = 0.8, row 3 = 0.6 (to row 2)
    kept, rep = semantic_dedup(emb, aus, 0.9)
    assert kept.tolist() == [True, False, True, True] and rep["dropped"] == 1
    kept, _ = semantic_dedup(emb, aus, 0.7)  # a lower threshold drops more
    assert kept.tolist() == [True, False, False, True]
    kept, _ = semantic_dedup(emb, aus, 1.0)  # a cosine equal to the threshold is dropped
    assert kept.tolist() == [True, False, True, True]


def test_cache_key_changes_when_the_encoders_weights_change(tmp_path, tiny_st, count_calls):
    """Same encoder name (the same folder), new weights: the cache must not hand back the old
    vectors."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "encoder"
    shutil.copytree(tiny_st, folder)
    corpus = write_corpus(tmp_path / "c", make_rows(4, (1, 2)))
    m1 = run(cfg(tmp_path, corpus, str(folder)))
    old = load_text_bank(tmp_path / "bundle")
    weights = sorted(folder.rglob("*.safetensors"))
    assert weights
    sizes = [f.stat().st_size for f in weights]
    for f in weights:  # a second encoder: the same architecture, other weights
        from safetensors import safe_open

        with safe_open(str(f), "pt") as fh:
            meta = fh.metadata()
        t = load_file(str(f))
        g = torch.Generator().manual_seed(1)
        save_file({k: v + 0.5 * torch.randn(v.shape, generator=g) if v.is_floating_point()
                   else v for k, v in t.items()}, str(f), metadata=meta)
    assert [f.stat().st_size for f in weights] == sizes  # only the numbers differ
    count_calls["texts"] = 0
    m2 = run(cfg(tmp_path, corpus, str(folder)))
    assert m2["encoder"] == m1["encoder"] == str(folder)
    assert m2["encoder_fingerprint"] != m1["encoder_fingerprint"]
    assert m2["texts_encoded"] == 8 and count_calls["texts"] == 8 and m2["texts_from_cache"] == 0
    new = load_text_bank(tmp_path / "bundle")
    assert not torch.allclose(new.embeddings[1], old.embeddings[1], atol=1e-3)


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
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    code = (
        "import time, sys\n"
        "from hiva.textbank import encoders\n"
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


def test_leftover_temp_files_are_removed_but_a_live_writers_are_kept(tmp_path, tiny_st):
    """A killed write leaves ``<name>.tmp<pid>`` (hiva.runtime.atomic_write): the next run
    deletes it, in the cache and in the bundle, unless its writer is still alive."""
    corpus = write_corpus(tmp_path / "c", make_rows(3, (1, 2)))
    run(cfg(tmp_path, corpus, tiny_st))
    (part_dir,) = {p.parent for p in (tmp_path / "cache").rglob("part-*.safetensors")}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [part_dir / f"part-1.safetensors.tmp{dead.pid}", part_dir / "part-2.tmp",
                 tmp_path / "bundle" / f"index.parquet.tmp{dead.pid}"]
        busy = part_dir / f"part-3.safetensors.tmp{live.pid}"
        for f in [*stale, busy]:
            f.write_bytes(b"half")
        m = run(cfg(tmp_path, corpus, tiny_st))
        assert m["texts_encoded"] == 0 and m["cache_parts_recomputed"] == []
        assert not any(f.exists() for f in stale) and busy.exists()
    finally:
        live.kill()
        live.wait()
    bundle = {p.name for p in (tmp_path / "bundle").iterdir()}
    assert bundle == {"embeddings.safetensors", "index.parquet", "manifest.json", "config.yaml"}


def test_textbank_reads_without_the_embed_stage_or_torch():
    """The library (hiva.textbank) never imports the stage that writes bundles, and importing it
    loads neither torch, numpy nor a model library (the encoders load theirs when called)."""
    code = ("import sys, hiva.textbank, hiva.textbank.cache\n"
            "bad = [m for m in ('hiva.pipeline.embed', 'torch', 'numpy', 'transformers', "
            "'sentence_transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
