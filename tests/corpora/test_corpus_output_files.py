"""``hiva corpus stats`` checks the files it is told to write before computing anything, and
makes their folder (hiva.runtime.output_file; issue 31)."""

from __future__ import annotations

import pytest

from tests.helpers import invoke


def test_corpus_stats_checks_its_files_first_and_makes_their_folder(corpus_a, tmp_path,
                                                                    monkeypatch):
    import hiva.corpora.stats as stats

    (tmp_path / "taken").mkdir()
    real = stats.corpus_stats
    monkeypatch.setattr(stats, "corpus_stats", lambda *a, **k: pytest.fail("computed first"))
    code, out = invoke("corpus", "stats", corpus_a, "--no-identifiability", "--json",
                     tmp_path / "taken")
    assert code == 1 and "--json" in out and "is a folder" in out
    monkeypatch.setattr(stats, "corpus_stats", real)
    code, out = invoke("corpus", "stats", corpus_a, "--no-identifiability", "--json",
                     tmp_path / "missing" / "s.json")
    assert code == 0, out
    assert (tmp_path / "missing" / "s.json").is_file()
