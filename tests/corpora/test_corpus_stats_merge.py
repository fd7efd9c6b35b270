"""stats figures on a hand-built corpus with known answers; merge provenance and dedup."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hiva.cli import app
from hiva.corpora.io import load_corpus, read_corpus_manifest
from hiva.corpora.merge import MergeConfig, run
from hiva.corpora.stats import (
    contamination,
    corpus_stats,
    distinct_n,
    frame_stats,
    identifiability,
    plot_stats,
)


class KeywordEncoder:
    """A real (tiny) sentence encoder: one dimension per keyword, counted in the text."""

    def __init__(self, words):
        self.words = words

    def encode(self, texts, batch_size=64):
        return np.array([[t.lower().count(w) + 1e-3 for w in self.words] for t in texts],
                        dtype=np.float32)


def test_contamination_rules():
    assert contamination("the brows go down, like AU4", 1) == ["code:AU4"]
    assert contamination("this is AU1 and action unit 1", 1) == []
    assert contamination("Action Unit 12 helps", 6) == ["code:AU12"]
    assert contamination("zygomaticus major pulls", 12) == []
    assert contamination("zygomaticus major pulls", 6) == ["muscle:zygomaticus major"]
    # shared muscle: orbicularis oris is AU24's own muscle, not contamination there
    assert contamination("orbicularis oris presses the lips", 24) == []
    assert contamination("orbicularis oris presses the lips", 12) == ["muscle:orbicularis oris"]
    # longest muscle name wins: AU9's own muscle is not AU10's
    assert contamination("levator labii superioris alaeque nasi wrinkles the nose", 9) == []
    assert contamination("levator labii superioris lifts the lip", 9) == [
        "muscle:levator labii superioris"]
    # FACS names count in title case only ("the lips part" is plain English)
    assert contamination("looks like a Lip Corner Puller", 6) == ["name:Lip Corner Puller"]
    assert contamination("the lips part slightly", 26) == []


def test_identifiability_known_answer():
    # AU1 rows point at dim 0, AU2 rows at dim 1, except one AU2 row that points at dim 0.
    emb = np.array([[1, 0], [1, 0.1], [0.9, 0], [0, 1], [0.1, 1], [1, 0.05]], dtype=float)
    aus = np.array([1, 1, 1, 2, 2, 2])
    share, per = identifiability(emb, aus)
    assert share == pytest.approx(5 / 6)
    assert per == {1: 1.0, 2: pytest.approx(2 / 3)}
    # leave-one-out: a lone outlier cannot identify itself through its own centroid
    share, per = identifiability(np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0.01]]),
                                 np.array([1, 1, 2, 2, 3]))
    assert 3 not in per and share == 1.0


def test_stats_known_answers(tmp_path, tools):
    texts = {1: ["brow brow up", "brow rises", "brow and AU12 smile"],
             12: ["smile wide", "smile with zygomaticus major", "brow smile smile"]}
    axes = [{"perspective": "clinical"}, {"perspective": "lay"}, {"perspective": "lay"}]
    d = tools.write_corpus(tmp_path / "c", tools.make_rows(texts, axes=axes))
    s = corpus_stats(d, encoder=KeywordEncoder(["brow", "smile"]), samples=2)
    assert s["rows"] == 6 and s["aus"] == 2
    assert s["per_au"][1]["rows"] == 3
    assert s["per_axis"] == {"perspective": {"lay": 4, "clinical": 2}}
    # contamination: only "brow and AU12 smile" (AU1) names another AU; AU12's own muscle is fine
    assert s["contamination"] == pytest.approx(1 / 6)
    assert s["per_au"][1]["contamination"] == pytest.approx(1 / 3)
    assert s["per_au"][12]["contamination"] == 0.0
    assert s["contamination_top"] == {"code:AU12": 1}
    # identifiability by hand (unit vectors over (brow, smile)): "brow and AU12 smile" is
    # (.71, .71); its AU1 centroid without it is (1, 0) -> cos .71, the AU12 centroid
    # (0,1)+(0,1)+(.45,.89) -> cos .81: wrong AU. "brow smile smile" (.45, .89) still sits
    # nearer AU12 (cos .89 vs .66). So 5 of 6.
    assert s["identifiability"] == pytest.approx(5 / 6)
    assert s["per_au"][1]["identifiability"] == pytest.approx(2 / 3)
    assert s["per_au"][12]["identifiability"] == 1.0
    all_texts = [t for v in texts.values() for t in v]
    assert s["distinct_1"] == pytest.approx(distinct_n(all_texts, 1))
    words = [w for t in all_texts for w in t.lower().split()]
    assert s["distinct_1"] == pytest.approx(len(set(words)) / len(words))
    assert s["mean_words"] == pytest.approx(len(words) / 6)
    assert s["dedup_kept_ratio"] == pytest.approx(0.8)
    assert len(s["per_au"][12]["samples"]) == 2
    out = tmp_path / "p.png"
    plot_stats(s, out)
    assert out.stat().st_size > 10_000


def test_distinct_2_by_hand():
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a"], 2) == 0.0


def test_frame_stats_without_encoder_or_manifest(tools):
    df = pd.DataFrame(tools.make_rows({1: ["x y"], 2: ["y z"]}))
    s = frame_stats(df, identify=False)
    assert s["identifiability"] != s["identifiability"]  # nan: not computed
    assert s["dedup_kept_ratio"] is None


def test_merge_keeps_provenance_and_dedups(tmp_path, corpus_a, corpus_b):
    out = tmp_path / "m"
    m = run(MergeConfig(sources=(str(corpus_a), str(corpus_b)), out=str(out)))
    df = load_corpus(out)
    # B's first AU1 text is A's first up to punctuation: exact dup, A's copy kept
    assert m["dedup"]["input"] == 9 and m["dedup"]["exact_duplicates"] == 1
    d = m["dedup"]
    assert len(df) == m["rows"] == 9 - d["exact_duplicates"] - d["near_duplicates"]
    dup = df[df["text"].str.startswith("the inner ends of the eyebrows rise")]
    assert dup["llm"].tolist() == ["llm-a"]
    assert set(df["llm"]) == {"llm-a", "llm-b"}
    assert set(df.loc[df["llm"] == "llm-b", "template_id"]) == {"tpl-llm-b"}
    man = read_corpus_manifest(out)
    assert [s["llm"] for s in man["sources"]] == ["llm-a", "llm-b"]
    assert man["rows_per_llm"]["llm-b"] == 2
    assert man["rows_per_au"] == {"1": 4, "12": 4}
    # a rerun with --overwrite replaces, never doubles
    run(MergeConfig(sources=(str(corpus_a), str(corpus_b)), out=str(out), overwrite=True))
    assert len(load_corpus(out)) == 8


def test_merge_near_duplicates_across_corpora(tmp_path, corpus_a, tools):
    b = tools.write_corpus(tmp_path / "nb", tools.make_rows(
        {12: ["the lip corners pull up and back into a broad grin"]}, "llm-b"), "llm-b")
    m = run(MergeConfig(sources=(str(corpus_a), str(b)), out=str(tmp_path / "m"), threshold=0.5))
    assert m["dedup"]["near_duplicates"] == 1 and m["rows"] == 6


def test_cli_merge_and_stats(tmp_path, corpus_a, corpus_b):
    r = CliRunner()
    res = r.invoke(app, ["corpus", "merge", str(corpus_a), str(corpus_b), "--out",
                         str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "8" in res.output
    js = tmp_path / "s.json"
    res = r.invoke(app, ["corpus", "stats", str(tmp_path / "m"), "--no-identifiability",
                         "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert "cross-AU contamination" in res.output
    assert json.loads(js.read_text())["rows"] == 8
    res = r.invoke(app, ["corpus", "merge", str(corpus_a), "--out", str(tmp_path / "x")])
    assert res.exit_code == 1


@pytest.mark.integration
def test_stats_minilm_identifiability(tmp_path, tools):
    texts = {
        1: ["the inner ends of the eyebrows are raised", "inner brows lift upward",
            "the middle of the forehead wrinkles as the inner brows rise"],
        12: ["the corners of the mouth pull up into a smile", "a broad smile lifts the lips",
             "lip corners draw back and up, smiling"],
        26: ["the jaw drops and the mouth falls open", "the lower jaw hangs down",
             "the mouth opens as the jaw lowers"],
    }
    d = tools.write_corpus(tmp_path / "c", tools.make_rows(texts))
    s = corpus_stats(d)
    assert s["identifiability"] >= 0.8
    assert s["identifiability_encoder"]


def test_row_checks_per_au_and_judge_agreement():
    import pandas as pd

    rows = [
        (1, "The inner ends of the eyebrows are pulled upward and the forehead wrinkles.", 5),
        (1, "The inner brows are raised, and the chin is pulled forward.", 2),
        (1, "The inner ends of the eyebrows are pulled upward and the browcorpse wrinkles.", 4),
        (12, "The lip corners are pulled up and outward toward the cheekbones.", 5),
        (12, "Seen from the inside, the lip corners are pulled up and outward.", 5),
        (12, "The mouth widens into a smile and the upper lip is pulled down.", 1),
    ]
    df = pd.DataFrame(rows, columns=["au", "text", "judge_score"])
    df["judge_score"] = df["judge_score"].astype("Int8")
    s = frame_stats(df, identify=False)
    assert s["per_au"][1]["checks"] == {"unknown_words": 2 / 3, "template_residue": 1.0,
                                        "repeated_clause": 1.0, "facts": 2 / 3, "cue": 1.0}
    assert s["per_au"][12]["checks"]["template_residue"] == 2 / 3
    assert s["per_au"][12]["checks_all"] == 1 / 3
    assert s["fact_reasons"] == {"describes_other_au": 2}
    assert "chin forward" in s["per_au"][1]["failures"][0]
    j = s["judge"]
    assert j["scored"] == 6 and j["mean_score_facts_fail"] == 1.5
    assert j["agreement"] == 1.0  # score >= 4 exactly where the fact checks pass
