"""The Corpus tab's backend (``hiva.app.corpus``): filters, stats, search by meaning, text banks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hiva.app.corpus
import hiva.corpora.stats
import hiva.textbank.encoders as encoders
from hiva.app.corpus import CorpusView, corpus_of_text_bank, parse_au
from hiva.errors import HivaError
from hiva.facs import AUS
from tests.corpora.conftest import make_rows, write_corpus

# Words of the tiny sentence-transformer's vocabulary (tests/embed/helpers.WORDS).
TEXTS_A = {1: ["the inner brows raise",
               "inner brow is raised and the skin of the face is pulled up"],
           12: ["the lip corners pull upward",
                "lips stretch and corners are pulled up"]}
TEXTS_B = {4: ["the brows pull down and brows press", "brow down and eyes tighten"],
           26: ["the jaw drop and the mouth is open", "a slight jaw drop"],
           12: ["strong pull of the lip corners upward"]}
AXES_A = [{"perspective": "clinical", "intensity": "slight"},
          {"perspective": "lay", "intensity": "strong"}]
AXES_B = [{"perspective": "lay", "context": None}]
ALL_TEXTS = [t for d in (TEXTS_A, TEXTS_B) for ts in d.values() for t in ts]


def _rows(judged: bool = True) -> list[dict]:
    rows = make_rows(TEXTS_A, "llm-a", AXES_A) + make_rows(TEXTS_B, "llm-b", AXES_B)
    for r in rows:
        r["au_name"] = AUS[r["au"]].name
        if r["text"] == "a slight jaw drop":
            r["axes"] = "{broken"  # malformed JSON
        if r["text"] == "brow down and eyes tighten":
            r["axes"] = "[1, 2]"  # JSON, but not an object
        if judged and r["text"] == "the brows pull down and brows press":
            r["judge_score"] = 5
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "c", _rows())


@pytest.fixture(scope="module")
def tiny_enc(tiny_st):
    return encoders.load_encoder(tiny_st, dtype="fp32")


@pytest.fixture(scope="module")
def bank(tmp_path_factory, corpus, tiny_st):
    """A text bank of the corpus, written by `hiva embed` with the tiny sentence-transformer."""
    from hiva.pipeline.embed import EmbedConfig, run

    root = tmp_path_factory.mktemp("bank")
    run(EmbedConfig(corpus=str(corpus), out=str(root / "b"), encoder=tiny_st, dtype="fp32",
                    cache_dir=str(root / "cache")))
    return root / "b"


class Counting:
    """An encoder wrapper that records every list of texts it is asked to encode."""

    def __init__(self, enc):
        self.enc, self.seen = enc, []
        self.identity, self.name = enc.identity, enc.name

    def encode(self, texts, *args, **kwargs):
        self.seen.append(list(texts))
        return self.enc.encode(texts, *args, **kwargs)


def patch_loader(monkeypatch, fn) -> None:
    """``load_encoder`` replaced where the corpus page and its stats look it up."""
    for mod in (encoders, hiva.app.corpus, hiva.corpora.stats):
        monkeypatch.setattr(mod, "load_encoder", fn)


@pytest.fixture
def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    patch_loader(monkeypatch, refuse)


def test_choices(corpus, no_model):
    c = CorpusView(corpus).choices()
    assert c == {
        "au": ["AU01 Inner Brow Raiser", "AU04 Brow Lowerer", "AU12 Lip Corner Puller",
               "AU26 Jaw Drop"],
        "template": ["tpl-llm-a", "tpl-llm-b"],
        "llm": ["llm-a", "llm-b"],
        "axes": ["context=(none)", "intensity=slight", "intensity=strong",
                 "perspective=clinical", "perspective=lay"],
    }


def test_browse_everything_sorted_with_limit_and_total(corpus, no_model):
    view = CorpusView(corpus)
    df, total = view.browse()
    assert total == 9 and len(df) == 9
    assert list(df.columns) == ["au", "text", "template", "axes", "llm", "judge_score"]
    assert df["au"].tolist() == ["AU01"] * 2 + ["AU04"] * 2 + ["AU12"] * 3 + ["AU26"] * 2
    assert df["text"].tolist()[:2] == sorted(TEXTS_A[1])  # by AU, then text
    assert df["text"].tolist()[4:7] == sorted(TEXTS_A[12] + TEXTS_B[12])
    first = df.iloc[1]
    assert (first["text"], first["template"], first["axes"], first["llm"]) == (
        "the inner brows raise", "tpl-llm-a", "perspective=clinical, intensity=slight", "llm-a")
    judged = df.set_index("text")["judge_score"]
    assert judged["the brows pull down and brows press"] == 5
    assert judged.isna().sum() == 8

    top, total = view.browse(limit=3)
    assert total == 9
    assert top["text"].tolist() == df["text"].tolist()[:3]
    assert view.browse(au=12, limit=1)[1] == 3 and len(view.browse(au=12, limit=1)[0]) == 1


@pytest.mark.parametrize("kwargs, texts", [
    (dict(au=12), TEXTS_A[12] + TEXTS_B[12]),
    (dict(au="AU04 Brow Lowerer"), TEXTS_B[4]),
    (dict(template="tpl-llm-a"), ALL_TEXTS[:4]),
    (dict(llm="llm-b"), ALL_TEXTS[4:]),
    (dict(axis="perspective=lay"), [TEXTS_A[1][1], TEXTS_A[12][1], TEXTS_B[4][0],
                                    TEXTS_B[26][0], TEXTS_B[12][0]]),
    (dict(axis="context=(none)"), [TEXTS_B[4][0], TEXTS_B[26][0], TEXTS_B[12][0]]),
    (dict(axis="intensity=strong"), [TEXTS_A[1][1], TEXTS_A[12][1]]),
    (dict(contains="UPWARD"), [TEXTS_A[12][0], TEXTS_B[12][0]]),
    (dict(contains=" jaw "), TEXTS_B[26]),
    (dict(au="12", axis="perspective=lay"), [TEXTS_A[12][1], TEXTS_B[12][0]]),
    (dict(au="AU12", axis="perspective=lay", llm="llm-b"), [TEXTS_B[12][0]]),
    (dict(au=12, template="tpl-llm-a", contains="stretch"), [TEXTS_A[12][1]]),
    (dict(llm="llm-a", contains="jaw"), []),
    (dict(au="", template="", axis="", llm="", contains="  "), ALL_TEXTS),  # "" = no filter
])
def test_browse_filters(corpus, no_model, kwargs, texts):
    df, total = CorpusView(corpus).browse(**kwargs)
    assert sorted(df["text"]) == sorted(texts) and total == len(texts)


def test_malformed_axes_rows_browse_as_no_axes(corpus, no_model):
    df, _ = CorpusView(corpus).browse(au=26)
    assert df.set_index("text")["axes"].to_dict() == {
        "a slight jaw drop": "", "the jaw drop and the mouth is open":
            "perspective=lay, context=(none)"}
    assert CorpusView(corpus).browse(au=4)[0]["axes"].tolist()[0] == ""  # "[1, 2]"


def test_no_judge_column_without_scores(tmp_path, no_model):
    c = write_corpus(tmp_path / "c", _rows(judged=False))
    assert list(CorpusView(c).browse()[0].columns) == ["au", "text", "template", "axes", "llm"]


def test_parse_au_and_bad_filters(corpus, no_model):
    for v in (12, np.int64(12), "12", "AU12", "au12", " AU12 Lip Corner Puller"):
        assert parse_au(v) == 12
    view = CorpusView(corpus)
    with pytest.raises(HivaError, match="is not an AU"):
        view.browse(au="smile")
    with pytest.raises(HivaError, match="not name=value"):
        view.browse(axis="perspective")


def test_bad_corpus_path(tmp_path, no_model):
    for spec in (tmp_path / "missing", tmp_path):
        with pytest.raises(HivaError) as e:
            CorpusView(spec)
        assert "\n" not in str(e.value) and str(spec) in str(e.value)


def test_search_exact_text_first_and_restricted_to_an_au(corpus, tiny_enc):
    enc = Counting(tiny_enc)
    view = CorpusView(corpus, encoder=enc)
    assert enc.seen == []  # nothing encoded before the first search
    hits = view.search("the jaw drop and the mouth is open", k=4)
    assert list(hits.columns) == ["score", "au", "text", "template", "llm"]
    assert len(hits) == 4 and hits["score"].is_monotonic_decreasing
    assert (hits.iloc[0]["text"], hits.iloc[0]["au"], hits.iloc[0]["score"]) == (
        "the jaw drop and the mouth is open", "AU26", 1.0)
    assert hits["score"].iloc[1] < 0.99
    assert hits.iloc[0]["template"] == "tpl-llm-b" and hits.iloc[0]["llm"] == "llm-b"
    # the corpus once, then one query each
    assert len(enc.seen) == 2 and sorted(enc.seen[0]) == sorted(ALL_TEXTS)
    assert enc.seen[1] == ["the jaw drop and the mouth is open"]

    only12 = view.search("the jaw drop and the mouth is open", k=10, au="AU12")
    assert only12["au"].tolist() == ["AU12"] * 3
    assert sorted(only12["text"]) == sorted(TEXTS_A[12] + TEXTS_B[12])
    best12 = view.search("lips stretch and corners are pulled up", au=12, k=1)
    assert best12["text"].tolist() == ["lips stretch and corners are pulled up"]
    assert len(enc.seen) == 4  # the corpus was encoded once
    assert view.search("the inner brows raise", k=10, au=2).empty
    assert "9 descriptions encoded with" in view.search_note


@pytest.mark.parametrize("query", ["", "   ", None])
def test_empty_query(corpus, no_model, query):
    with pytest.raises(HivaError, match="^type words to search for") as e:
        CorpusView(corpus).search(query)
    assert "\n" not in str(e.value)


def test_encoder_spec_is_loaded_on_first_search(corpus, tiny_st):
    view = CorpusView(corpus, encoder=tiny_st)
    assert view.encoder == tiny_st
    assert view.search("a slight jaw drop", k=1)["text"].tolist() == ["a slight jaw drop"]
    assert isinstance(view.encoder, encoders.TextEncoder)


def test_search_through_text_bank_encodes_only_the_query(corpus, bank, tiny_st, tiny_enc,
                                                         monkeypatch):
    loaded, seen = [], []
    real = encoders.load_encoder

    def load(spec=None, **kwargs):
        enc = real(spec, **kwargs)
        loaded.append(spec)
        encode = enc.encode
        enc.encode = lambda texts, *a, **k: seen.append(list(texts)) or encode(texts, *a, **k)
        return enc

    patch_loader(monkeypatch, load)
    view = CorpusView(corpus, text_bank=bank)
    assert loaded == []
    hits = view.search("strong pull of the lip corners upward", k=9)
    assert loaded == [tiny_st]  # the encoder the bank names, not the shipped MiniLM
    assert seen == [["strong pull of the lip corners upward"]]  # the corpus came from the bank
    assert hits.iloc[0]["text"] == "strong pull of the lip corners upward"
    assert hits.iloc[0]["score"] == 1.0
    assert "embeddings from the text bank" in view.search_note

    # the same ranking and scores as encoding the corpus with that model
    direct = CorpusView(corpus, encoder=tiny_enc).search("strong pull of the lip corners upward",
                                                          k=9)
    assert hits["text"].tolist() == direct["text"].tolist()
    assert np.allclose(hits["score"], direct["score"], atol=2e-3)

    # stats reuse the bank's embeddings too
    stats = view.stats()
    assert seen == [["strong pull of the lip corners upward"]]
    assert stats["identifiability_encoder"]["weights"] == tiny_enc.identity["weights"]


def test_text_bank_encoder_given_is_reused(corpus, bank, tiny_enc, monkeypatch):
    enc = Counting(tiny_enc)
    enc.identity_hash = tiny_enc.identity_hash  # the bank's encoder, already loaded
    patch_loader(monkeypatch, lambda *a, **k: pytest.fail("loaded again"))
    view = CorpusView(corpus, text_bank=bank, encoder=enc)
    assert view.search("a slight jaw drop", k=1)["text"].tolist() == ["a slight jaw drop"]
    assert enc.seen == [["a slight jaw drop"]]


def test_text_bank_of_another_corpus_is_not_used(tmp_path, corpus, bank, tiny_enc):
    rows = [r for r in _rows() if r["au"] != 26] + make_rows(
        {26: ["the mouth is open"]}, "llm-c")
    other = write_corpus(tmp_path / "other", rows)
    enc = Counting(tiny_enc)
    view = CorpusView(other, text_bank=bank, encoder=enc)
    assert view.search("the mouth is open", k=1)["text"].tolist() == ["the mouth is open"]
    assert len(enc.seen) == 2 and len(enc.seen[0]) == 8  # the corpus, then the query
    assert "lacks 1 of the 8 corpus texts" in view.search_note
    assert "8 descriptions encoded with" in view.search_note

    missing = CorpusView(corpus, text_bank=tmp_path / "nowhere", encoder=Counting(tiny_enc))
    assert len(missing.search("a slight jaw drop", k=1)) == 1
    assert missing.search_note.startswith("text bank not used")


def test_stats_and_plot(corpus, tiny_enc, tmp_path):
    from PIL import Image

    enc = Counting(tiny_enc)
    view = CorpusView(corpus, encoder=enc)
    stats = view.stats()
    assert view.stats() is stats  # computed once
    assert stats["rows"] == 9 and stats["aus"] == 4 and stats["llms"] == ["llm-a", "llm-b"]
    assert stats["per_axis"]["perspective"] == {"lay": 5, "clinical": 2}
    assert stats["dedup"] == {"input": 10, "exact_duplicates": 1, "near_duplicates": 1,
                              "kept": 8}  # from the manifest
    assert 0 <= stats["identifiability"] <= 1
    assert stats["identifiability_encoder"] == tiny_enc.identity
    assert len(enc.seen) == 1 and sorted(enc.seen[0]) == sorted(ALL_TEXTS)
    view.search("a slight jaw drop")
    assert len(enc.seen) == 2  # search reused the embeddings stats made

    text = view.stats_text()
    assert text.startswith("rows 9  AUs 4  LLMs llm-a, llm-b")
    assert "AU26" in text and "axis perspective" in text

    out = view.stats_plot(tmp_path / "figs" / "stats.png")
    assert out == tmp_path / "figs" / "stats.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.width > 500 and im.height > 500


def test_corpus_of_text_bank(tmp_path, corpus, bank):
    assert corpus_of_text_bank(bank) == str(corpus)
    assert corpus_of_text_bank(tmp_path / "nowhere") is None
    assert corpus_of_text_bank(tmp_path) is None  # no manifest

    def fake(folder, corpus_value, text="{}"):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(
            json.dumps({"bundle_version": 1, "corpus": corpus_value}) if text == "{}" else text)
        return folder

    assert corpus_of_text_bank(fake(tmp_path / "names", "names-only")) is None
    assert corpus_of_text_bank(fake(tmp_path / "hub", "owner/corpus")) is None
    assert corpus_of_text_bank(fake(tmp_path / "gone", str(tmp_path / "moved"))) is None
    assert corpus_of_text_bank(fake(tmp_path / "bad", None, text="{not json")) is None
    sharded = tmp_path / "sharded"
    fake(sharded / "shard-00000-of-00002", str(corpus))
    fake(sharded / "shard-00001-of-00002", str(corpus))
    assert corpus_of_text_bank(sharded) == str(corpus)


def test_corpus_of_text_bank_relative_from_another_folder(tmp_path, monkeypatch):
    """`hiva embed --corpus out/c --out out/bank` run in a project folder: the relative corpus is
    found from anywhere, through the bank's recorded out."""
    proj = tmp_path / "proj"
    (proj / "out/c").mkdir(parents=True)
    (proj / "out/bank").mkdir()
    (proj / "out/bank/manifest.json").write_text(json.dumps(
        {"bundle_version": 1, "corpus": "out/c", "config": {"out": "out/bank"}}))
    monkeypatch.chdir(tmp_path)
    got = corpus_of_text_bank(proj / "out/bank")
    assert got is not None and Path(got).resolve() == (proj / "out/c").resolve()


@pytest.mark.integration
def test_search_ranks_by_meaning_with_minilm(tmp_path):
    """The shipped all-MiniLM-L6-v2 (the default encoder): paraphrases find their AU."""
    texts = {12: ["the corners of the mouth are pulled up into a broad smile"],
             4: ["the eyebrows are lowered and drawn together into a frown"],
             26: ["the jaw drops and the mouth hangs open"],
             1: ["the inner ends of the eyebrows rise, giving a worried look"]}
    rows = make_rows(texts, "llm-a")
    for r in rows:
        r["au_name"] = AUS[r["au"]].name
    view = CorpusView(write_corpus(tmp_path / "c", rows))
    assert view.search("a happy grin", k=1)["au"].tolist() == ["AU12"]
    angry = view.search("scowling angrily", k=4)
    assert angry["au"].tolist()[0] == "AU04"
    assert angry["score"].iloc[0] > angry["score"].iloc[1] + 0.1
    assert view.encoder.name == "sentence-transformers/all-MiniLM-L6-v2"
