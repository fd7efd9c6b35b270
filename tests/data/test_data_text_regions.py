"""Regions read from the descriptions (``map_prior_source: corpus``): a description naming the
inner brow yields the inner-brow discs, a shuffled bank moves them to the AU that got it, and a
run places its prior from them (the template differs from the FACS one where the text does)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from hiva.errors import HivaError
from hiva.regions import au_discs
from hiva.text_regions import PART_DISCS, part_shares, text_parts, text_regions
from tests.data.test_data_regions import _face

TEXTS = {
    1: ["The inner ends of the eyebrows are pulled upward.",
        "Both inner brows rise, wrinkling the middle of the forehead.",
        "The inner corners of the brows lift."],
    12: ["The lip corners are pulled up and outward.", "The mouth corners rise into a smile.",
         "Corners of the mouth are drawn upward and back."],
    17: ["The chin boss is pushed upward.", "The chin rises and the lower lip is pushed up.",
         "The skin of the chin wrinkles as the chin is raised."],
}


def test_a_description_naming_the_inner_brow_yields_the_inner_brow_discs():
    assert text_parts(TEXTS[1]) == ["inner brow"]
    assert part_shares(TEXTS[1])["inner brow"] == 1.0
    table = text_regions(TEXTS)
    assert table[1] == PART_DISCS["inner brow"]
    assert table[12] == PART_DISCS["lip corner"]
    assert table[17][:1] == PART_DISCS["chin"]  # the chin (one disc), then the lower lip
    got = au_discs(_face(), "hiva-synth", [1, 12], table)
    # the inner-brow discs: 0.3 eye distances (12 px) above each inner brow point
    np.testing.assert_allclose(got[0, :2, :2], [[48, 16], [64, 16]], atol=1e-4)
    np.testing.assert_allclose(got[1, :2, :2], [[44, 80], [68, 80]], atol=1e-4)


def test_a_shuffled_bank_moves_them():
    shuffled = {1: TEXTS[12], 12: TEXTS[17], 17: TEXTS[1]}  # whole banks deranged
    table = text_regions(shuffled)
    assert table[17] == PART_DISCS["inner brow"] and table[1] == PART_DISCS["lip corner"]
    a = au_discs(_face(), "hiva-synth", [1], text_regions(TEXTS))
    b = au_discs(_face(), "hiva-synth", [1], table)
    assert np.nanmax(b[0, :, 1]) > 70 > np.nanmax(a[0, :, 1])  # from the brows to the mouth


def test_no_part_named_gives_no_region_and_the_fallback_is_the_top_part():
    assert text_regions({4: ["A tense, unreadable look."]}) == {4: ()}
    assert np.isnan(au_discs(_face(), "hiva-synth", [4], {4: ()})).all()
    one = ["The eyes narrow.", "The brows are lowered.", "The lips press.", "The cheeks lift."]
    assert len(text_parts(one, min_share=0.9)) == 1  # none reaches the share: the most named


def _bank(folder, texts):
    """An embed bundle with these texts (random unit vectors: no encoder needed)."""
    folder.mkdir(parents=True)
    rows = [{"au": a, "text_hash": f"h{a}{i}", "row_id": f"r{a}-{i}", "text": t, "kept": True}
            for a, ts in texts.items() for i, t in enumerate(ts)]
    emb = torch.nn.functional.normalize(torch.randn(len(rows), 16,
                                                    generator=torch.Generator().manual_seed(0)),
                                        dim=-1)
    save_file({"embeddings": emb.contiguous()}, str(folder / "embeddings.safetensors"))
    pd.DataFrame(rows).to_parquet(folder / "index.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "encoder": "random-test-vectors", "encoder_fingerprint": "t", "dim": 16,
        "fingerprint": "text-regions", "rows": len(rows)}))
    return folder


def test_the_prior_table_follows_the_source(tmp_path):
    from hiva.train.config import TrainConfig
    from hiva.train.fold_setup import prior_table

    aus = (1, 12, 17)
    bank = str(_bank(tmp_path / "bank", TEXTS))
    model = dict(map_prior="kl", text_mode="learned")
    assert prior_table(TrainConfig(model=model, text_bank=bank), aus) is None  # facs
    corpus = prior_table(TrainConfig(model={**model, "map_prior_source": "corpus"},
                                     text_bank=bank), aus)
    assert corpus == text_regions(TEXTS)
    shuffled = prior_table(TrainConfig(model={**model, "map_prior_source": "shuffled"},
                                       text_bank=bank), aus)
    assert sorted(map(repr, shuffled.values())) == sorted(map(repr, corpus.values()))
    assert all(shuffled[a] != corpus[a] for a in aus)  # a derangement: every AU moved
    with pytest.raises(HivaError, match="map_prior_source corpus reads the regions from the "
                                        "descriptions: pass --text-bank"):
        prior_table(TrainConfig(model={**model, "map_prior_source": "corpus"}), aus)
