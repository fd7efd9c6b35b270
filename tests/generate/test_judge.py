"""The optional judge pass of generate-descriptions (``--judge``), with the tiny Llama as judge:
the prompt, reading replies, the columns and manifest counts, ``--min-judge-score`` (dropped rows
replaced by surplus ones), resume after a kill without judging a row twice, a cache of its own
per judge model, a run staged by an older hiva, and the CLI's one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from hiva.corpora.schema import CORPUS_SCHEMA, MANIFEST, SCHEMA_VERSION, STAGING
from hiva.facs import AUS
from hiva.pipeline.backends.transformers_backend import TransformersGenerator
from hiva.pipeline.generate import run
from hiva.pipeline.generate_config import GenerateConfig
from hiva.pipeline.judge import UNPARSEABLE, parse_verdict, render_judge_prompt

HIVA = [sys.executable, "-m", "hiva.cli"]


def _cfg(tiny, out, **kw):
    llm, templates = tiny
    base = {"out": str(out), "aus": (1, 4, 12), "per_au": 3, "llm": str(llm),
            "backend": "transformers", "templates": str(templates),
            "only_user_templates": True, "prompt_style": "completion", "batch_size": 4,
            "samples_per_prompt": 2, "max_new_tokens": 24, "min_fact_words": 1,
            "max_rounds": 8, "seed": 3}
    return GenerateConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny(tiny_llm, short_templates):
    return tiny_llm, short_templates


@pytest.fixture(scope="module")
def base_corpus(tiny, tmp_path_factory):
    """A finished run without a judge; tests copy it and rerun it with judge flags (the judge
    settings are not part of the resume check, so the rerun only does the final pass)."""
    out = tmp_path_factory.mktemp("base") / "c"
    run(_cfg(tiny, out))
    return out


def _copy(base, tmp_path, name="c"):
    dst = tmp_path / name
    shutil.copytree(base, dst)
    return dst


def _rule(text: str) -> int:
    """The fixed rating the stand-in judge gives a description."""
    return 1 + hashlib.sha1(text.encode()).digest()[0] % 5


def _description(prompt) -> str:
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    if isinstance(prompt, str):
        return text.rsplit("Description: ", 1)[1].rsplit("\nRating:", 1)[0]
    return text.split('Description to rate:\n"', 1)[1].split('"\n', 1)[0]


@pytest.fixture
def fixed_judge(monkeypatch):
    """The tiny Llama's generate answering with ``_rule``'s rating; records each description
    it was asked about, and can be made to fail (KeyboardInterrupt) on a given call."""
    state = {"asked": [], "calls": 0, "fail_on": None, "rule": _rule}

    def generate(self, prompts, sampling):
        state["calls"] += 1
        if state["fail_on"] == state["calls"]:
            raise KeyboardInterrupt
        assert sampling.temperature == 0 and sampling.n == 1
        out = []
        for p in prompts:
            d = _description(p)
            state["asked"].append(d)
            r = state["rule"](d)
            out.append([f" {r}\nRationale: rule {r} for this one."])
        return out

    monkeypatch.setattr(TransformersGenerator, "generate", generate)
    return state


def test_prompt_shows_the_facts_the_description_and_the_rubric():
    desc = "The lip corners are pulled up toward the cheekbones."
    au = AUS[12]
    for style in ("completion", "chat"):
        p = render_judge_prompt(12, desc, style)
        text = p if style == "completion" else p[0]["content"]
        assert style == "completion" or (len(p) == 1 and p[0]["role"] == "user")
        for fact in (au.name, *au.muscles, au.region, *au.appearance, desc):
            assert fact in text, (style, fact)
        assert "5: every clause agrees with the facts." in text
        assert "1: wrong, or not a description of a face." in text
        assert "Rationale:" in text
    comp = render_judge_prompt(12, desc, "completion")
    assert comp.endswith(f"Description: {desc}\nRating:")
    assert "Action: Lip Corner Puller" not in comp.split("Description: ")[0]  # no example of AU12
    assert "Action: Brow Lowerer" in comp  # the other AUs' worked examples


@pytest.mark.parametrize("reply, expect", [
    ("Rating: 4\nRationale: Every cue matches.", (4, "Every cue matches.")),
    ("**Rating:** 5/5\n**Rationale:** All clauses agree.", (5, "All clauses agree.")),
    ("Sure!\n\nRating (1-5): 2\nRationale: It describes a smile.", (2, "It describes a smile.")),
    ("rating of 3 - one clause is vague", (3, "one clause is vague")),
    ("Rating:\n 1\nRationale: Not a face.", (1, "Not a face.")),
    ("Rating: 4", (4, None)),
    ("My rating: 10/10. Rating: 2", (2, None)),
    ("Rating: <a number from 1 to 5>\nRationale: x", (None, UNPARSEABLE)),
    ("Rating: 7\nRationale: too high", (None, UNPARSEABLE)),
    ("Rating: 4.5", (None, UNPARSEABLE)),
    ("The description is good.", (None, UNPARSEABLE)),
    ("", (None, UNPARSEABLE)),
])
def test_parse_verdict(reply, expect):
    assert parse_verdict(reply) == expect


def _counts_hold(m: dict, df: pd.DataFrame) -> None:
    j, d = m["judge"], m["dedup"]
    assert j["judged"] == j["scored"] + j["unparseable"]
    assert sum(j["score_counts"].values()) == j["scored"]
    assert d["kept"] - d["over_target"] - j["dropped_below"] - j["dropped_unscored"] == len(df)
    assert m["rows"] == len(df)


def test_judge_pass_on_the_tiny_model_writes_columns_and_counts(tiny, tmp_path, monkeypatch):
    loads = []
    real_load = TransformersGenerator.load
    monkeypatch.setattr(TransformersGenerator, "load",
                        lambda self: (loads.append(self.name), real_load(self))[1])
    out = tmp_path / "c"
    res = run(_cfg(tiny, out, judge=str(tiny[0]), judge_batch_size=2))
    df = pd.read_parquet(out)
    assert list(df.columns) == CORPUS_SCHEMA.names and len(df) > 0
    assert set(df["schema_version"]) == {SCHEMA_VERSION}
    m = json.loads((out / MANIFEST).read_text())
    assert m["judge"] == res["judge"] and m["judge"]["model"] == str(tiny[0])
    assert m["judge"]["fingerprint"].startswith("sha256:")
    assert m["judge"]["judged"] == len(df)  # no threshold: only the rows kept are judged
    assert m["judge"]["prompt_style"] == "completion"  # a tiny model: the few-shot prompt
    _counts_hold(m, df)
    assert (df["judge"] == str(tiny[0])).all()
    unscored = df["judge_score"].isna()
    assert (df.loc[unscored, "judge_reason"] == UNPARSEABLE).all()
    assert df.loc[~unscored, "judge_score"].between(1, 5).all()
    assert int(unscored.sum()) == m["judge"]["unparseable"]
    assert loads == [str(tiny[0])]  # the judge is the generator: used as loaded, not reloaded
    assert list((out / STAGING / "judge").glob("c-*.parquet"))


def test_chat_judge_prompts_go_through_the_chat_template(tiny, base_corpus, tmp_path):
    # The tiny Llama has a chat template; its replies are no ratings, which is counted.
    out = _copy(base_corpus, tmp_path)
    res = run(_cfg(tiny, out, judge=str(tiny[0]), judge_prompt_style="chat",
                   judge_max_new_tokens=8))
    j = res["judge"]
    assert j["prompt_style"] == "chat" and j["judged"] == res["rows"]
    assert j["unparseable"] + j["scored"] == j["judged"]


def test_annotate_only_keeps_the_rows_of_a_run_without_judge(tiny, base_corpus, tmp_path,
                                                              fixed_judge):
    plain = pd.read_parquet(base_corpus)
    assert plain["judge_score"].isna().all() and plain["judge"].isna().all()
    out = _copy(base_corpus, tmp_path)
    res = run(_cfg(tiny, out, judge=str(tiny[0])))
    df = pd.read_parquet(out)
    cols = [c for c in CORPUS_SCHEMA.names if not c.startswith("judge")]
    pd.testing.assert_frame_equal(df[cols], plain[cols])
    assert df["judge_score"].tolist() == [_rule(t) for t in df["text"]]
    assert df["judge_reason"].tolist() == [f"rule {_rule(t)} for this one." for t in df["text"]]
    assert res["judge"]["dropped_below"] == 0 and res["judge"]["min_score"] is None
    from hiva.corpora.hub import export

    export(out, tmp_path / "x")  # the dataset card says who judged and how
    card = (tmp_path / "x" / "README.md").read_text()
    assert f"- Judge: `{tiny[0]}`" in card and "no row dropped" in card


def test_min_judge_score_drops_rows_and_surplus_ones_take_their_place(tiny, base_corpus,
                                                                       tmp_path, fixed_judge):
    order = {au: _dedup_order(base_corpus, au) for au in (1, 4, 12)}
    with_surplus = [au for au, texts in order.items() if len(texts) > 3]
    assert with_surplus, {au: len(t) for au, t in order.items()}  # the fixture's run has some
    au0 = with_surplus[0]
    first, spare = order[au0][0], order[au0][3:]

    def rule(t):  # the first row of an AU with surplus fails, its surplus passes
        return 1 if t == first else 5 if t in spare else _rule(t)

    fixed_judge["rule"] = rule
    out = _copy(base_corpus, tmp_path)
    res = run(_cfg(tiny, out, judge=str(tiny[0]), min_judge_score=3, judge_batch_size=2))
    df = pd.read_parquet(out)
    assert (df["judge_score"] >= 3).all()
    j = res["judge"]
    asked = fixed_judge["asked"]
    assert j["judged"] == len(asked) == len(set(asked))
    assert j["dropped_below"] == sum(rule(t) < 3 for t in asked) > 0
    assert j["dropped_unscored"] == 0
    _counts_hold(json.loads((out / MANIFEST).read_text()), df)
    # AU by AU in dedup order: a dropped row's place goes to the AU's next row
    for au, texts in order.items():
        assert df.loc[df["au"] == au, "text"].tolist() == [t for t in texts if rule(t) >= 3][:3]
    mine = set(df.loc[df["au"] == au0, "text"])
    assert first not in mine and spare[0] in mine
    # Another threshold: judged rows come from the cache; only rows not judged yet are asked.
    before = set(asked)
    res2 = run(_cfg(tiny, out, judge=str(tiny[0]), min_judge_score=4))
    assert not set(asked[len(before):]) & before
    assert (pd.read_parquet(out)["judge_score"] >= 4).all()
    assert res2["judge"]["dropped_below"] == sum(rule(t) < 4 for t in set(asked))


def _dedup_order(out, au):
    """The AU's candidates after dedup over the staged chunks, in order (what the judge sees)."""
    import pyarrow.parquet as pq

    from hiva.corpora.dedup import dedup_frame

    sd = out / STAGING / "shard-000"
    frames = [pq.read_table(f).to_pandas() for f in sorted(sd.glob("r*-c*.parquet"))]
    kept, _ = dedup_frame(pd.concat(frames, ignore_index=True),
                          GenerateConfig(out="x").dedup_config())
    return kept.loc[kept["au"] == au, "text"].tolist()


def test_killed_judge_pass_resumes_without_judging_a_row_twice(tiny, base_corpus, tmp_path,
                                                               fixed_judge):
    ref, killed = _copy(base_corpus, tmp_path, "ref"), _copy(base_corpus, tmp_path, "killed")
    kw = {"judge": str(tiny[0]), "min_judge_score": 3, "judge_batch_size": 2}
    run(_cfg(tiny, ref, **kw))
    ref_asked = list(fixed_judge["asked"])
    fixed_judge.update(asked=[], calls=0, fail_on=2)  # killed during the second batch
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tiny, killed, **kw))
    first = list(fixed_judge["asked"])
    assert len(first) == 2 and json.loads((killed / MANIFEST).read_text())["judge"] is None
    assert not list((killed / STAGING / "judge").glob("*.tmp*"))
    fixed_judge.update(asked=[], calls=0, fail_on=None)
    run(_cfg(tiny, killed, **kw))
    again = fixed_judge["asked"]
    assert not set(first) & set(again)  # the judged batch was not sent to the model again
    assert sorted(first + again) == sorted(ref_asked)
    a, b = (pd.read_parquet(d).sort_values("row_id").reset_index(drop=True)
            for d in (ref, killed))
    pd.testing.assert_frame_equal(a, b)
    fixed_judge.update(asked=[])
    run(_cfg(tiny, killed, **kw))  # finished: a rerun asks the model nothing
    assert fixed_judge["asked"] == []


def test_a_run_staged_by_an_older_hiva_is_judged_as_current_rows(tiny, base_corpus, tmp_path,
                                                                 fixed_judge):
    # Chunks staged before schema 2 (no judge columns, schema_version 1) still finalize.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiva.corpora.schema import SCHEMA_COLUMNS

    out = _copy(base_corpus, tmp_path)
    v1 = pa.schema([CORPUS_SCHEMA.field(n) for n in SCHEMA_COLUMNS[1]])
    for f in (out / STAGING / "shard-000").glob("r*-c*.parquet"):
        df = pq.read_table(f).to_pandas()[list(v1.names)].assign(schema_version=1)
        pq.write_table(pa.Table.from_pandas(df, schema=v1, preserve_index=False), f)
    run(_cfg(tiny, out, judge=str(tiny[0])))
    df = pd.read_parquet(out)
    assert set(df["schema_version"]) == {SCHEMA_VERSION} and df["judge_score"].notna().all()


@pytest.mark.parametrize("argv, expect", [
    (["--judge", "/nonexistent/judge.gguf"], "--judge"),
    (["--min-judge-score", "3"], "--min-judge-score needs --judge"),
    (["--judge", "smollm2-135m", "--min-judge-score", "6"], "--min-judge-score must be in 1..5"),
    (["--judge", "x", "--judge-backend", "onnx"], "--judge-backend 'onnx'"),
])
def test_cli_judge_errors_are_one_line(tmp_path, argv, expect):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([*HIVA, "generate-descriptions", "--out", str(tmp_path / "x"), *argv],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and "Traceback" not in p.stderr, p.stderr
    assert "--llm" not in err[0]
    assert not (tmp_path / "x").exists()


def test_another_judge_model_misses_the_first_ones_cache(tiny, tmp_path, fixed_judge):
    """The cache key holds the judge's model: the same descriptions judged by a second model
    (a copy of the tiny Llama whose config differs) in the same folder are asked again, under
    other keys; the first model, asked again, reads its own verdicts back."""
    from hiva.pipeline.judge import Judge

    other = tmp_path / "other-judge"
    shutil.copytree(tiny[0], other)
    conf = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**conf, "hiva_test_copy": 1}))
    items = [(1, "The inner brows are raised."), (12, "The lip corners are pulled up.")]
    out = tmp_path / "c"

    def judged(model):
        judge = Judge(_cfg(tiny, out, judge=str(model), judge_prompt_style="completion"), out)
        fixed_judge["asked"] = []
        try:
            return [r["key"] for r in judge.verdicts(items)], fixed_judge["asked"]
        finally:
            judge.close()

    texts = sorted(t for _, t in items)
    first, asked = judged(tiny[0])
    assert sorted(asked) == texts
    second, asked = judged(other)
    assert sorted(asked) == texts  # no verdict of the first model was reused
    assert not set(first) & set(second)
    assert judged(tiny[0]) == (first, [])  # the first model's verdicts are still cached
