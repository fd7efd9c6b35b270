"""generate-descriptions --launcher: two shards launched here (local) or as a job array through
submitit's local executor (slurm) give the corpus of two manual --shard-index runs merged (a
rerun runs nothing, one with --overwrite every shard again); a failing shard is one line naming
its log, exit code 1 and no merge, and a rerun runs only that shard. Launch flags that do not
fit: tests/test_jobs.py."""

from __future__ import annotations

import pandas as pd
import pytest

from hiva.corpora.schema import MANIFEST
from hiva.pipeline.generate import run
from hiva.pipeline.generate_config import GenerateConfig
from tests.helpers import run_cli

KEYS = ["row_id", "au", "text", "shard", "prompt_hash", "template_id", "sample_idx"]


@pytest.fixture(scope="module")
def llm(tiny_llm, short_templates):
    return str(tiny_llm), str(short_templates)


def _flags(llm, out) -> list[str]:
    """The CLI flags of ``_settings``: the tiny Llama, two AUs, a handful of prompts."""
    return ["generate-descriptions", "--out", out, "--llm", llm[0], "--templates", llm[1],
            "--aus", "1,12", "--per-au", "4", "--backend", "transformers", "--prompt-style",
            "completion", "--batch-size", "4", "--samples-per-prompt", "2", "--max-new-tokens",
            "24", "--max-rounds", "6", "--seed", "3", "--set", "min_fact_words=1", "--set",
            "only_user_templates=true", "--num-shards", "2"]


def _corpus(out) -> pd.DataFrame:
    df = pd.read_parquet(out)[KEYS]
    return df.sort_values("row_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def manual(llm, tmp_path_factory):
    """The corpus of ``--shard-index 0``, then ``--shard-index 1`` (which merges), in-process."""
    out = tmp_path_factory.mktemp("manual") / "c"
    for i in (0, 1):
        run(GenerateConfig(out=str(out), aus=(1, 12), per_au=4, llm=llm[0],
                           backend="transformers", templates=llm[1], only_user_templates=True,
                           prompt_style="completion", batch_size=4, samples_per_prompt=2,
                           max_new_tokens=24, min_fact_words=1, max_rounds=6, seed=3,
                           num_shards=2, shard_index=i))
    return _corpus(out)


def _headers(log) -> int:
    return log.read_text().count("==== hiva generate-descriptions shard")


def test_local_launcher_runs_both_shards_and_merges_like_manual_runs(llm, manual, tmp_path):
    out = tmp_path / "c"
    r = run_cli(*_flags(llm, out), "--launcher", "local", "--parallel", "2")
    assert "2 shards, 0 done, 2 to run; launcher local" in r.stdout
    assert "hiva generate-descriptions: 2 shards: finished 2, skipped 0" in r.stdout
    assert f"to {out}" in r.stdout and (out / MANIFEST).is_file()
    pd.testing.assert_frame_equal(_corpus(out), manual)
    logs = out / ".staging" / "launch"
    assert [_headers(logs / f"shard-00{i}.log") for i in (0, 1)] == [1, 1]
    assert "the launcher merges the shards" in (logs / "shard-000.log").read_text()

    again = run_cli(*_flags(llm, out), "--launcher", "local")  # nothing left to run
    assert "2 shards, 2 done, 0 to run" in again.stdout
    assert [_headers(logs / f"shard-00{i}.log") for i in (0, 1)] == [1, 1]
    pd.testing.assert_frame_equal(_corpus(out), manual)

    over = run_cli(*_flags(llm, out), "--launcher", "local", "--overwrite")  # all again
    assert "2 shards, 0 done, 2 to run" in over.stdout and f"to {out}" in over.stdout
    assert [_headers(logs / f"shard-00{i}.log") for i in (0, 1)] == [2, 2]
    pd.testing.assert_frame_equal(_corpus(out), manual)


def test_a_failed_shard_is_one_line_and_a_rerun_runs_only_it(llm, manual, tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "c"
    (out / ".staging").mkdir(parents=True)
    (out / ".staging" / "shard-001").write_text("in the way")  # shard 1 cannot make its folder
    r = run_cli(*_flags(llm, out), "--launcher", "slurm", "--slurm", "time=5", check=False,
                env={"HIVA_SUBMITIT_CLUSTER": "local"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "submitted 2 shard(s) as job array" in r.stdout
    log1 = out / ".staging" / "launch" / "shard-001.log"
    failed = [ln for ln in r.stdout.splitlines() if ln.startswith("  failed shard 1:")]
    assert len(failed) == 1 and str(log1) in failed[0] and "shard-001" in failed[0], r.stdout
    assert "finished 1, skipped 0 (already finished), failed 1" in r.stdout
    assert "nothing was merged" in r.stderr and "Traceback" not in r.stdout + r.stderr
    assert not (out / MANIFEST).exists()

    (out / ".staging" / "shard-001").unlink()
    r = run_cli(*_flags(llm, out), "--launcher", "local")
    assert "2 shards, 1 done, 1 to run" in r.stdout
    assert _headers(out / ".staging" / "launch" / "shard-000.log") == 1  # not run again
    assert _headers(log1) == 2
    pd.testing.assert_frame_equal(_corpus(out), manual)
