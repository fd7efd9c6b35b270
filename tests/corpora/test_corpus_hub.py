"""export -> load_dataset round trip, the card, push failing cleanly offline."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hiva.cli import app
from hiva.corpora.hub import export, push
from hiva.corpora.io import load_corpus
from hiva.corpora.schema import CORPUS_SCHEMA
from hiva.errors import HivaError


def test_export_round_trip_two_configs(tmp_path, corpus_a, corpus_b):
    import datasets

    out = tmp_path / "shared"
    r = export(corpus_a, out)
    assert r["config_name"] == "llm-a"
    export(corpus_b, out, config_name="second")
    export(corpus_b, out, config_name="second")  # re-export replaces, never doubles
    assert datasets.get_dataset_config_names(str(out)) == ["llm-a", "second"]
    dd = datasets.load_dataset(str(out), "llm-a")
    assert list(dd) == ["train"]
    ds = dd["train"]
    assert ds.features.arrow_schema.equals(CORPUS_SCHEMA.remove_metadata(), check_metadata=False) \
        or [f.name for f in ds.features.arrow_schema] == CORPUS_SCHEMA.names
    assert ds.data.schema.types == CORPUS_SCHEMA.types
    src = load_corpus(corpus_a).sort_values("row_id").reset_index(drop=True)
    back = ds.to_pandas().sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(src, back)
    assert len(datasets.load_dataset(str(out), "second", split="train")) == 3
    # load_corpus reads the exported folder too
    assert len(load_corpus(out, "second")) == 3


def test_card_yaml_parses_and_carries_fields(tmp_path, corpus_a, corpus_b):
    from huggingface_hub import DatasetCard, DatasetCardData

    out = tmp_path / "shared"
    export(corpus_a, out, license="mit")
    export(corpus_b, out)
    card = DatasetCard.load(out / "README.md")
    data = card.data
    assert isinstance(data, DatasetCardData)
    assert data.license == "mit"
    assert data.language == ["en"]
    assert data.annotations_creators == ["machine-generated"]
    assert data.size_categories == ["n<1K"]
    assert {"facs", "action-units"} <= set(data.tags)
    assert data.task_categories
    d = data.to_dict()
    assert [c["config_name"] for c in d["configs"]] == ["llm-a", "llm-b"]
    assert d["hiva"]["llm-a"]["llm_fingerprint"] == "fp-llm-a"
    assert d["hiva"]["llm-b"]["dedup"]["kept"] == 8
    front = yaml.safe_load(card.content.split("---")[1])
    assert front["license"] == "mit"
    body = card.text
    for needle in ("fp-llm-a", "temperature=0.8", "tpl-llm-a", "too_short: 2",
                   "exact_duplicates: 1", "hiva generate-descriptions --config",
                   "arXiv:2602.14425", "Limitations", "clinical", "| text_hash | string |"):
        assert needle in body, needle


def test_push_offline_is_one_clear_line(monkeypatch, corpus_a):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HivaError, match="export"):
        push(corpus_a, "me/corpus")
    res = CliRunner().invoke(app, ["corpus", "push", str(corpus_a), "--repo-id", "me/corpus"])
    assert res.exit_code == 1
    assert isinstance(res.exception, HivaError) and "\n" not in str(res.exception)


def test_push_without_token(monkeypatch, tmp_path, corpus_a):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    with pytest.raises(HivaError, match="hf auth login"):
        push(corpus_a, "me/corpus")


def test_export_rejects_missing_corpus(tmp_path):
    with pytest.raises(HivaError, match=r"corpus .*nope does not exist; pass a corpus folder"):
        export(tmp_path / "nope", tmp_path / "out")


def test_card_marks_a_default_config(tmp_path, corpus_a, corpus_b):
    """The first config is the default one (``default: true``, the Hub's config YAML), so
    ``load_dataset(repo)`` needs no config name; the card parses as a ``DatasetCard`` and links
    nowhere it should not."""
    import datasets
    from huggingface_hub import DatasetCard

    out = tmp_path / "shared"
    export(corpus_a, out)
    export(corpus_b, out, config_name="second")
    card = DatasetCard.load(out / "README.md")
    configs = card.data.to_dict()["configs"]
    assert [c.get("default", False) for c in configs] == [True, False]
    assert configs[0]["config_name"] == "llm-a"
    info = card.data.to_dict()["dataset_info"]
    assert [f["name"] for f in info[0]["features"]] == CORPUS_SCHEMA.names
    assert {"name": "created_at", "dtype": "timestamp[s, tz=UTC]"} in info[0]["features"]
    assert "https://github.com/)" not in card.text
    ds = datasets.load_dataset(str(out), split="train")  # no config name: the default
    assert len(ds) == len(load_corpus(corpus_a))
