"""hiva embed --launcher: two shards launched here (local) or as a job array through submitit's
local executor (slurm) give the bundle of manual --shard-index runs, which merges to the
unsharded bundle; a failing shard is one line naming its log, exit code 1 and no merge, and a
rerun runs only that shard (and shards made with other settings again)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hiva.pipeline.embed import EmbedConfig, run
from hiva.textbank import load_text_bank
from tests.embed.helpers import make_rows, write_corpus
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "c", make_rows(8, (1, 2, 12)))


def _flags(corpus, st, out, cache, *more) -> list:
    return ["embed", "--corpus", corpus, "--out", out, "--encoder", st, "--dtype", "fp32",
            "--device", "cpu", "--batch-size", "8", "--cache-dir", cache, "--num-shards", "2",
            *more]


def _cfg(corpus, st, out, cache, **kw) -> EmbedConfig:
    return EmbedConfig(corpus=str(corpus), out=str(out), encoder=st, dtype="fp32", device="cpu",
                       batch_size=8, cache_dir=str(cache), **kw)


def _index(out, i) -> pd.DataFrame:
    return pd.read_parquet(out / f"shard-{i:05d}-of-00002" / "index.parquet")


def _same_bank(a, b) -> None:
    """The same rows, texts and embeddings per AU (a sharded bundle lists them shard by shard)."""
    assert a.aus == b.aus
    for au in a.aus:
        order_a = sorted(range(len(a.row_ids[au])), key=a.row_ids[au].__getitem__)
        order_b = sorted(range(len(b.row_ids[au])), key=b.row_ids[au].__getitem__)
        assert [a.row_ids[au][i] for i in order_a] == [b.row_ids[au][i] for i in order_b]
        assert [a.texts[au][i] for i in order_a] == [b.texts[au][i] for i in order_b]
        torch.testing.assert_close(a.embeddings[au][order_a], b.embeddings[au][order_b],
                                   atol=1e-5, rtol=1e-5)


def _headers(out, i) -> int:
    return (out / ".launch" / f"shard-00{i}.log").read_text().count("==== hiva embed shard")


def test_local_launcher_matches_manual_shards_and_the_unsharded_bundle(tmp_path, tiny_st,
                                                                        corpus):
    manual, whole = tmp_path / "manual", tmp_path / "whole"
    for i in (0, 1):
        run(_cfg(corpus, tiny_st, manual, tmp_path / "cache1", num_shards=2, shard_index=i))
    run(_cfg(corpus, tiny_st, whole, tmp_path / "cache1"))
    out = tmp_path / "launched"
    r = run_cli(*_flags(corpus, tiny_st, out, tmp_path / "cache2", "--launcher", "local",
                        "--parallel", "2"))
    assert "2 shards, 0 done, 2 to run; launcher local" in r.stdout
    assert "embedded 24 rows in 2 shards (24 encoded, 0 from cache)" in r.stdout
    for i in (0, 1):
        pd.testing.assert_frame_equal(_index(out, i), _index(manual, i))
    _same_bank(load_text_bank(out), load_text_bank(whole))
    _same_bank(load_text_bank(out), load_text_bank(manual))

    # shards made with other settings are not done: they run again
    r = run_cli(*_flags(corpus, tiny_st, out, tmp_path / "cache2", "--launcher", "local",
                        "--max-length", "16"))
    assert "2 shards, 0 done, 2 to run" in r.stdout
    assert [_headers(out, i) for i in (0, 1)] == [2, 2]


def test_a_failed_shard_is_one_line_and_a_rerun_runs_only_it(tmp_path, tiny_st, corpus):
    pytest.importorskip("submitit")
    out = tmp_path / "b"
    out.mkdir()
    (out / "shard-00001-of-00002").write_text("in the way")
    flags = _flags(corpus, tiny_st, out, tmp_path / "cache")
    r = run_cli(*flags, "--launcher", "slurm", "--slurm", "time=5", "--slurm", "cpus_per_task=1",
                check=False, env={"HIVA_SUBMITIT_CLUSTER": "local"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "submitted 2 shard(s) as job array" in r.stdout
    failed = [ln for ln in r.stdout.splitlines() if ln.startswith("  failed shard 1:")]
    log = out / ".launch" / "shard-001.log"
    assert len(failed) == 1 and "is a file" in failed[0] and f"(log {log})" in failed[0], r.stdout
    assert "embedded" not in r.stdout and "Traceback" not in r.stdout + r.stderr

    (out / "shard-00001-of-00002").unlink()
    r = run_cli(*flags, "--launcher", "local")
    assert "2 shards, 1 done, 1 to run" in r.stdout and "embedded 24 rows in 2 shards" in r.stdout
    assert [_headers(out, i) for i in (0, 1)] == [1, 2]
    whole = tmp_path / "whole"
    run(_cfg(corpus, tiny_st, whole, tmp_path / "cache"))
    _same_bank(load_text_bank(out), load_text_bank(whole))
