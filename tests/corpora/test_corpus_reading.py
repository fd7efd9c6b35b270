"""``hiva corpus stats --read N``: N rows drawn with a seed, each with the verifier's verdict on
every clause, and the verifier's tally."""

from __future__ import annotations

from typer.testing import CliRunner

from hiva.cli import app
from hiva.corpora.reading import format_reading, read_rows

TEXTS = {
    1: ["The inner ends of the eyebrows are pulled upward.",
        "The brow is pulled high, and the brow ridge is pushed outward."],
    7: ["Code this action when the eyes don't tighten and the lower lid stays straight.",
        "The eyelids tighten and the lower lid is raised and straightened."],
    24: ["Code this action when lips are pressed to the chin."],
}


def test_read_draws_rows_with_a_seed_and_judges_every_clause(tmp_path, tools):
    import pandas as pd

    d = tools.write_corpus(tmp_path / "c", tools.make_rows(TEXTS))
    df = pd.read_parquet(next((d / "data").glob("*.parquet")))
    rows = read_rows(df, 3, seed=4)
    assert len(rows) == 3 and rows == read_rows(df, 3, seed=4)
    assert [r["text"] for r in read_rows(df, 10, seed=4)][:3] == [r["text"] for r in rows]
    every = {r["text"]: r for r in read_rows(df, 10, seed=0)}
    assert len(every) == 5
    bad = every["Code this action when the eyes don't tighten and the lower lid stays straight."]
    assert bad["verdict"] == "negates_own_movement" and bad["cue"] is None  # denied: no cue
    assert [c["verdict"] for c in bad["clauses"]] == ["negates_own_movement"]
    good = every["The eyelids tighten and the lower lid is raised and straightened."]
    assert good["verdict"] == "kept" and good["clauses"][0]["verdict"] == "verified"
    text = format_reading(list(every.values()), 0)
    assert "✗ wrong_contact: Code this action when lips are pressed to the chin  (chin)" in text
    assert "verifier: 2/5 kept (40%); 3/5 use a distinguishing cue;" in text


def test_stats_read_cli(tmp_path, tools):
    d = tools.write_corpus(tmp_path / "c", tools.make_rows(TEXTS))
    r = CliRunner().invoke(app, ["corpus", "stats", str(d), "--read", "2", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "reading of 2 rows (seed 1)" in r.output and r.output.count("\n[") == 2
    again = CliRunner().invoke(app, ["corpus", "stats", str(d), "--read", "2", "--seed", "1"])

    def sheet(out):
        return out[out.index("reading of"):].strip()

    assert sheet(again.output) == sheet(r.output)
