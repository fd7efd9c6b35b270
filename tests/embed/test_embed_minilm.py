"""The shipped all-MiniLM-L6-v2 through hiva embed (integration: loads the real model)."""

from __future__ import annotations

import numpy as np
import pytest

from hiva.pipeline.embed import EmbedConfig, run
from hiva.textbank import encode_names_bank, load_text_bank
from tests.embed.helpers import write_corpus


@pytest.mark.integration
def test_minilm_bundle_is_meaningful(tmp_path):
    rows = [(12, "the corners of the lips are pulled up into a smile"),
            (12, "a smile lifts the mouth corners upward"),
            (4, "the eyebrows are lowered and drawn together into a frown"),
            (4, "a frown pulls the brows down and together")]
    corpus = write_corpus(tmp_path / "c", rows)
    m = run(EmbedConfig(corpus=str(corpus), out=str(tmp_path / "b"), dtype="fp32",
                        cache_dir=str(tmp_path / "cache")))
    assert m["dim"] == 384 and m["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    bank = load_text_bank(tmp_path / "b", aus=(4, 12))
    e12, e4 = bank.embeddings[12].numpy(), bank.embeddings[4].numpy()
    within = float(e12[0] @ e12[1]) + float(e4[0] @ e4[1])
    across = float(e12[0] @ e4[0]) + float(e12[1] @ e4[1])
    assert within > across + 0.3  # same-AU paraphrases sit closer than different AUs
    names = encode_names_bank((4, 12), None, cache_dir=str(tmp_path / "cache"), dtype="fp32")
    sims = names.embeddings[12].numpy() @ np.stack([e12.mean(0), e4.mean(0)]).T
    assert sims[0, 0] > sims[0, 1]
