"""The one corpus writer (generation's final pass and merge), MergeConfig's own checks, and
``--set`` on ``hiva corpus merge``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from hiva.cli import app
from hiva.corpora.io import load_corpus, read_corpus_manifest, write_corpus
from hiva.corpora.merge import MergeConfig
from hiva.corpora.schema import CONFIG, CORPUS_SCHEMA, MANIFEST
from hiva.errors import HivaError


def test_write_corpus_splits_files_and_leaves_no_temp_files(tmp_path, tools):
    rows = pd.DataFrame(tools.make_rows({1: [f"the inner brows rise {i}" for i in range(5)]}))
    out = tmp_path / "c"
    out.mkdir()
    cfg = MergeConfig(sources=("a", "b"), out=str(out))
    write_corpus(out, rows, {"kind": "hiva-description-corpus", "rows": 5}, cfg, rows_per_file=2)
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert sorted(p.name for p in out.iterdir()) == [CONFIG, MANIFEST, "data"]
    assert read_corpus_manifest(out) == {"kind": "hiva-description-corpus", "rows": 5}
    df = load_corpus(out)
    assert list(df.columns) == CORPUS_SCHEMA.names and df["text"].tolist() == rows["text"].tolist()
    write_corpus(out, rows.iloc[:1], {"rows": 1}, cfg)  # a rewrite replaces every data file
    assert [p.name for p in (out / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    with pytest.raises(HivaError, match="lacks column"):
        write_corpus(out, rows.drop(columns=["llm"]), {}, cfg)


@pytest.mark.parametrize("kw, rule", [
    ({"sources": ("a",)}, "merge needs at least two corpora"),
    ({"sources": ("a", " ")}, "a corpus to merge is named by an empty text"),
    ({"out": ""}, "merge needs --out FOLDER"),
    ({"threshold": 0.0}, "--threshold must be in (0, 1]"),
    ({"threshold": 1.01}, "--threshold must be in (0, 1]"),
    ({"num_perm": 4}, "num_perm must be ≥ 16"),
    ({"ngram": 0}, "ngram must be ≥ 1"),
])
def test_merge_config_bad_values_are_one_line(kw, rule):
    base = {"sources": ("a", "b"), "out": "m", **kw}
    with pytest.raises(HivaError) as e:
        MergeConfig(**base)
    msg = str(e.value)
    assert msg.startswith("bad merge config: ") and rule in msg and "\n" not in msg, msg
    assert msg.endswith("; fix the config or flag")


def test_merge_set_reaches_keys_without_a_flag(tmp_path, corpus_a, corpus_b):
    out = tmp_path / "m"
    args = ["corpus", "merge", str(corpus_a), str(corpus_b), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--set", "ngram=3", "--set", "num_perm=64"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / MANIFEST).read_text())["config"]
    assert (config["ngram"], config["num_perm"]) == (3, 64)
    res = CliRunner().invoke(app, [*args, "--overwrite", "--set", "num_perm=4"])
    assert res.exit_code == 1 and "bad merge config: num_perm must be ≥ 16" in str(res.exception)
