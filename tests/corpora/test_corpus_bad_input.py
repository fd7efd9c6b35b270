"""Bad input to corpus merge / export / stats: nothing replaced without --overwrite, nothing of a
user's removed, stale hashes and other schema versions caught, one clear line each."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hiva.cli import app
from hiva.corpora.hub import export
from hiva.corpora.io import load_corpus, read_corpus_manifest
from hiva.corpora.merge import MergeConfig, run
from hiva.corpora.schema import MANIFEST, SCHEMA_VERSION, text_hash
from hiva.corpora.stats import corpus_stats
from hiva.errors import HivaError
from hiva.runtime import WRITING


def _merge(a, b, out, **kw):
    return run(MergeConfig(sources=(str(a), str(b)), out=str(out), **kw))


def test_merge_onto_a_corpus_needs_overwrite(tmp_path, corpus_a, corpus_b, tools):
    out = tmp_path / "m"
    _merge(corpus_a, corpus_b, out)
    other = tools.write_corpus(tmp_path / "o", tools.make_rows(
        {2: ["the outer ends of the brows rise and arch the eyebrows"]}, "llm-o"), "llm-o")
    before = load_corpus(out)
    with pytest.raises(HivaError, match=r"already holds a corpus; add --overwrite"):
        _merge(corpus_a, other, out)
    pd.testing.assert_frame_equal(load_corpus(out), before)  # untouched
    (out / "notes.txt").write_text("mine")
    m = _merge(corpus_a, other, out, overwrite=True)
    assert m["rows"] == 7 and set(load_corpus(out)["llm"]) == {"llm-a", "llm-o"}
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removes only hiva's files


def test_merge_never_replaces_a_folder_hiva_did_not_write(tmp_path, corpus_a, corpus_b):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("\\chapter{One}")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(HivaError, match=r"not a corpus folder made by hiva \(it holds "
                                            r"thesis\.tex\)"):
            _merge(corpus_a, corpus_b, out, **kw)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(HivaError, match="is a file"):
        _merge(corpus_a, corpus_b, f)


def test_merge_recomputes_a_stale_text_hash(tmp_path, corpus_a, tools):
    # B's row was edited by hand after generation: its stored text_hash is still that of A's
    # first AU1 text, which it no longer says.
    rows = tools.make_rows({1: ["the frontalis pulls the inner brows up into a worried slant"]},
                           "llm-b")
    rows[0]["text_hash"] = text_hash(load_corpus(corpus_a)["text"].iloc[0])
    b = tools.write_corpus(tmp_path / "b", rows, "llm-b")
    m = _merge(corpus_a, b, tmp_path / "m")
    df = load_corpus(tmp_path / "m")
    assert m["dedup"]["exact_duplicates"] == 0 and m["rows"] == 7
    assert "the frontalis pulls the inner brows up into a worried slant" in set(df["text"])
    assert (df["text_hash"] == df["text"].map(text_hash)).all()
    assert m["text_hash_recomputed"] == 1


def _future(tmp_path, tools, name="v3"):
    """A corpus of the schema version after this hiva's."""
    v = SCHEMA_VERSION + 1
    rows = tools.make_rows({1: ["the inner brows rise in a future schema"]}, "llm-v3")
    for r in rows:
        r["schema_version"] = v
    d = tools.write_corpus(tmp_path / name, rows, "llm-v3")
    m = json.loads((d / MANIFEST).read_text())
    (d / MANIFEST).write_text(json.dumps({**m, "schema_version": v}))
    return d


def test_other_schema_versions_are_refused_by_merge_export_and_stats(tmp_path, corpus_a, tools):
    v3 = _future(tmp_path, tools)
    v = SCHEMA_VERSION + 1
    msg = (rf"schema version {v} \(version {v}: 1 rows.*\); this hiva reads schema versions "
           rf"1, {SCHEMA_VERSION}")
    with pytest.raises(HivaError, match=msg):
        _merge(corpus_a, v3, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(HivaError, match=msg):
        export(v3, tmp_path / "x")
    with pytest.raises(HivaError, match=msg):
        corpus_stats(v3, identify=False)
    res = CliRunner().invoke(app, ["corpus", "export", str(v3), "--to", str(tmp_path / "y")])
    assert res.exit_code == 1 and isinstance(res.exception, HivaError)


def test_schema_1_corpus_loads_merges_and_exports_as_current(tmp_path, corpus_b, tools):
    # A corpus an older hiva wrote (schema 1: no judge columns) still loads, with those columns
    # null; merged with a current one, or exported, its rows are written as current rows.
    from hiva.corpora.schema import CORPUS_SCHEMA, JUDGE_COLUMNS

    texts = {1: ["the inner brow ends rise toward the forehead in a worried slant",
                 "horizontal wrinkles form in the centre of the forehead as inner brows lift"],
             12: ["the lip corners pull up and back into a broad smile"]}
    old = tools.write_corpus(tmp_path / "old", tools.make_rows(texts, "llm-o"), "llm-o",
                             version=1)
    assert "judge_score" not in pd.read_parquet(old).columns
    df = load_corpus(old)
    assert list(df.columns) == CORPUS_SCHEMA.names and len(df) == 3
    assert df[list(JUDGE_COLUMNS)].isna().all().all() and set(df["schema_version"]) == {1}
    judged = load_corpus(corpus_b)
    assert df["judge_score"].dtype == judged["judge_score"].dtype  # typed alike when all null
    m = _merge(old, corpus_b, tmp_path / "m")
    assert m["schema_version"] == SCHEMA_VERSION
    assert [s["schema_version"] for s in m["sources"]] == [1, SCHEMA_VERSION]
    merged = load_corpus(tmp_path / "m")
    assert set(merged["schema_version"]) == {SCHEMA_VERSION} and len(merged) == m["rows"]
    assert merged["judge_score"].isna().all()
    export(old, tmp_path / "x")
    ds = pd.read_parquet(tmp_path / "x" / "data")
    assert list(ds.columns) == CORPUS_SCHEMA.names and set(ds["schema_version"]) == {2}
    xm = json.loads(next((tmp_path / "x" / "hiva").glob(f"*/{MANIFEST}")).read_text())
    assert xm["schema_version"] == SCHEMA_VERSION and xm["upgraded_from_schema_version"] == 1


def test_zero_row_corpus_says_so(tmp_path, tools):
    import pyarrow.parquet as pq

    from hiva.corpora.schema import CORPUS_SCHEMA, data_file

    d = tools.write_corpus(tmp_path / "empty", tools.make_rows({1: ["x y z"]}))
    pq.write_table(CORPUS_SCHEMA.empty_table(), d / data_file(0, 1))  # what generate writes
    m = read_corpus_manifest(d)
    (d / MANIFEST).write_text(json.dumps({**m, "rows": 0, "candidates": 12,
                                          "filters": {"too_short": 12}}))
    msg = r"corpus .*empty has no rows \(generation made 12 candidates, filters dropped 12\)"
    with pytest.raises(HivaError, match=msg):
        load_corpus(d)
    with pytest.raises(HivaError, match=msg):
        export(d, tmp_path / "x")
    res = CliRunner().invoke(app, ["corpus", "stats", str(d), "--no-identifiability"])
    assert res.exit_code == 1 and "has no rows" in str(res.exception)
    assert "logged in" not in str(res.exception)


def test_export_to_a_file_or_a_foreign_folder_is_refused(tmp_path, corpus_a):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(HivaError, match=r"--to .*file\.txt is a file"):
        export(corpus_a, f)
    d = tmp_path / "project"
    d.mkdir()
    (d / "README.md").write_text("# my project\n")
    with pytest.raises(HivaError,
                       match=r"holds README\.md that `hiva corpus export` did not write"):
        export(corpus_a, d)
    assert (d / "README.md").read_text() == "# my project\n"
    export(corpus_a, tmp_path / "shared")
    export(corpus_a, tmp_path / "shared", config_name="again")  # an earlier export: fine


def test_export_killed_before_its_card_is_taken_back_by_its_rerun(tmp_path, corpus_a,
                                                                  monkeypatch):
    """Killed after the data but before README.md (the file that makes a folder an export),
    the rerun used to refuse the folder as not an export; now it finishes it."""
    from huggingface_hub import DatasetCard

    def killed(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(DatasetCard, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            export(corpus_a, tmp_path / "shared")
    assert not (tmp_path / "shared" / "README.md").exists()
    assert export(corpus_a, tmp_path / "shared")["rows"] > 0
    assert (tmp_path / "shared" / "README.md").is_file()
    assert not (tmp_path / "shared" / WRITING).exists()


def test_cli_merge_overwrite_flag(tmp_path, corpus_a, corpus_b):
    r = CliRunner()
    args = ["corpus", "merge", str(corpus_a), str(corpus_b), "--out", str(tmp_path / "m")]
    assert r.invoke(app, args).exit_code == 0
    res = r.invoke(app, args)
    assert res.exit_code == 1 and "--overwrite" in str(res.exception)
    assert r.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_push_without_network_fails_at_once(monkeypatch, corpus_a, no_hub_env):
    from hiva import hub

    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # CI sets both
        monkeypatch.delenv(k, raising=False)
    endpoint = no_hub_env["HF_ENDPOINT"]
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_used")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hub, "_memo", {})
    with pytest.raises(HivaError, match=rf"cannot push to me/corpus: the Hugging Face Hub at "
                                        rf"{endpoint} is not reachable.*corpus export"):
        from hiva.corpora.hub import push

        push(corpus_a, "me/corpus")
