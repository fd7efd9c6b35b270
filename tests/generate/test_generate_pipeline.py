"""generate-descriptions end to end with the tiny Llama: corpus layout, schema, provenance,
counts, resume after a real kill, shards, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hiva.corpora.schema import CORPUS_SCHEMA, MANIFEST
from hiva.pipeline.generate import run
from hiva.pipeline.generate_config import GenerateConfig

HIVA = [sys.executable, "-m", "hiva.cli"]


def _cfg(tiny_llm, out, **kw):
    base = {"out": str(out), "aus": (1, 12), "per_au": 4, "llm": str(tiny_llm[0]),
            "backend": "transformers", "templates": str(tiny_llm[1]),
            "only_user_templates": True, "prompt_style": "completion", "batch_size": 4,
            "samples_per_prompt": 2, "max_new_tokens": 24, "min_fact_words": 1,
            "max_rounds": 6, "seed": 3}
    return GenerateConfig(**{**base, **kw})


@pytest.fixture()
def tiny_llm(tiny_llm, short_templates):  # noqa: F811 - the model plus its prompt template
    return tiny_llm, short_templates


def test_corpus_layout_schema_and_counts(tiny_llm, tmp_path):
    res = run(_cfg(tiny_llm, tmp_path / "c"))
    out = tmp_path / "c"
    df = pd.read_parquet(out)  # the plain pandas read the issue promises
    assert set(df.columns) == {f.name for f in CORPUS_SCHEMA}
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(out), split="train")
    assert ds.num_rows == len(df) > 0
    m = json.loads((out / MANIFEST).read_text())
    assert m["rows"] == len(df) == sum(m["rows_per_au"].values()) == res["rows"]
    d = m["dedup"]
    assert d["input"] == d["kept"] + d["exact_duplicates"] + d["near_duplicates"]
    assert d["kept"] - d["over_target"] == len(df)
    assert m["candidates"] == d["input"] + sum(m["filters"].values())
    # per AU: the candidates the filters kept, and the drops by reason, adding up to the totals
    by_au = m["filters_by_au"]
    assert sum(v.get("kept", 0) for v in by_au.values()) == d["input"]
    for reason, n in m["filters"].items():
        assert sum(v.get(reason, 0) for v in by_au.values()) == n
    assert df.groupby("au").size().max() <= 4
    assert not df.duplicated(["au", "text_hash"]).any()
    axes = [json.loads(a) for a in df["axes"]]
    assert all({"perspective", "intensity", "context", "focus", "style"} <= set(a) for a in axes)
    assert set(df["template_id"]) == {"user:short.completion"}
    assert df["llm_fingerprint"].str.startswith("sha256:").all()
    assert (out / "_config.yaml").exists()


def test_rerun_is_a_noop_and_other_settings_are_refused(tiny_llm, tmp_path):
    from hiva.errors import HivaError

    out = tmp_path / "c"
    run(_cfg(tiny_llm, out))
    before = pd.read_parquet(out).sort_values("row_id").reset_index(drop=True)
    run(_cfg(tiny_llm, out))
    after = pd.read_parquet(out).sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    with pytest.raises(HivaError, match="different settings"):
        run(_cfg(tiny_llm, out, temperature=0.3))
    run(_cfg(tiny_llm, out, temperature=0.3, overwrite=True))


def _corpus_texts(out: Path) -> list[tuple[int, str]]:
    df = pd.read_parquet(out)
    return sorted(zip(df["au"].tolist(), df["text"].tolist()))


def test_resume_after_kill_matches_uninterrupted_run(tiny_llm, tmp_path):
    args = [
        "generate-descriptions",
        "--llm",
        str(tiny_llm[0]),
        "--templates",
        str(tiny_llm[1]),
        "--aus",
        "1,4,12",
        "--per-au",
        "6",
        "--backend",
        "transformers",
        "--prompt-style",
        "completion",
        "--batch-size",
        "1",
        "--samples-per-prompt",
        "2",
        "--max-new-tokens",
        "24",
        "--seed",
        "5",
        "--max-rounds",
        "6",
    ]
    cfg_file = tmp_path / "g.yaml"
    cfg_file.write_text("min_fact_words: 1\nonly_user_templates: true\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(
        [*HIVA, *args, "--config", str(cfg_file), "--out", str(ref)],
        check=True,
        env=env,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [*HIVA, *args, "--config", str(cfg_file), "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = killed / ".staging" / "shard-000"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(staging.glob("*.done"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (staging / "shard.done").exists(), "the run finished before it could be killed"
    done_before = len(list(staging.glob("r*.done")))
    assert done_before >= 3
    subprocess.run(
        [*HIVA, *args, "--config", str(cfg_file), "--out", str(killed)],
        check=True,
        env=env,
        capture_output=True,
    )
    assert _corpus_texts(killed) == _corpus_texts(ref)
    assert not list(staging.glob("*.tmp*"))


def test_shards_write_disjoint_prompts_and_finalize_merges(tiny_llm, tmp_path):
    out = tmp_path / "c"
    r0 = run(_cfg(tiny_llm, out, num_shards=2, shard_index=0))
    assert r0["status"] == "shard-done" and r0["waiting_for"] == [1]
    r1 = run(_cfg(tiny_llm, out, num_shards=2, shard_index=1))
    assert r1["status"] == "done"
    df = pd.read_parquet(out)
    assert not df.duplicated(["au", "text_hash"]).any()
    # a prompt is (AU, axes, template); this template renders every axis the same, so its text
    # (prompt_hash) cannot tell them apart
    prompts = {s: set(map(tuple, df.loc[df["shard"] == s, ["au", "axes", "template_id"]].values))
               for s in (0, 1)}
    assert prompts[0] and prompts[1] and not prompts[0] & prompts[1]
    again = run(_cfg(tiny_llm, out, num_shards=2, shard_index=0, finalize=True))
    assert again["rows"] == r1["rows"]


def test_user_template_renders_sandboxed(tiny_llm, tmp_path):
    from hiva.errors import HivaError

    # The fixture's own short template, under a user's name (a `from conftest import` would pick
    # whichever tests/*/conftest.py pytest imported first).
    short = (tiny_llm[1] / "short.completion.jinja").read_text()
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "mine.completion.jinja").write_text(short)
    res = run(_cfg(tiny_llm, tmp_path / "c", templates=str(tdir)))
    df = pd.read_parquet(tmp_path / "c")
    assert res["rows"] > 0 and set(df["template_id"]) == {"user:mine.completion"}
    (tdir / "mine.completion.jinja").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(HivaError, match=r"mine\.completion\.jinja was stopped by the sandbox "
                                        r"\(access to attribute '__class__' of 'str' object is "
                                        r"unsafe\.\)"):
        run(_cfg(tiny_llm, tmp_path / "c2", templates=str(tdir)))
    assert not (tmp_path / "c2").exists()  # refused before any work


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["--llm", "llama3"], "not available here"),
        (["--llm", "/nonexistent/model.gguf"], "does not exist"),
        (["--aus", "1,99"], "unknown AU"),
        (["--num-shards", "2", "--shard-index", "2"], "--shard-index"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, argv, expect):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run(
        [*HIVA, "generate-descriptions", "--out", str(tmp_path / "x"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and "Traceback" not in p.stderr, p.stderr


@pytest.mark.integration
def test_shipped_smollm2_makes_a_small_corpus(tmp_path):
    res = run(
        GenerateConfig(out=str(tmp_path / "c"), aus=(12,), per_au=3, batch_size=4, max_rounds=4)
    )
    df = pd.read_parquet(tmp_path / "c")
    assert res["llm"].startswith("smollm2-135m") and len(df) == 3
    assert df["text"].str.len().gt(20).all()
