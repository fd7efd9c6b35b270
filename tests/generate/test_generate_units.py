"""Parsing, filters, dedup, templates and config: small and exact."""

from __future__ import annotations

import pandas as pd
import pytest

from hiva.corpora.dedup import DedupConfig, dedup_frame
from hiva.corpora.schema import text_hash
from hiva.errors import HivaError
from hiva.pipeline.filters import FilterConfig, check, parse_reply, tidy


def test_parse_strips_preamble_numbering_and_splits_lists():
    reply = (
        "Sure! Here are three descriptions:\n1. The inner brows rise.\n2) Forehead wrinkles form.\n"
        "- The brows slant upward. 4. A worried look appears."
    )
    assert parse_reply(reply) == [
        "The inner brows rise.",
        "Forehead wrinkles form.",
        "The brows slant upward.",
        "A worried look appears.",
    ]
    assert parse_reply('{"descriptions": ["A b c.", "D e f."]}') == ["A b c.", "D e f."]
    assert (
        tidy("the lip corners rise and the cheeks lift; the eyes")
        == "The lip corners rise and the cheeks lift."
    )


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("Brows rise.", "too_short"),
        ("I'm sorry, as an AI language model I cannot describe faces.", "refusal"),
        (
            "Die Augenbrauen werden nach oben gezogen, während die Stirn Falten wirft.",
            "non_english",
        ),
        ("The brows brows rise up high as the forehead wrinkles.", "repeated_tokens"),
        ("Unlike AU4, the inner brows are pulled up and the forehead wrinkles.", "other_au"),
        (
            "The inner brows rise, like the lip corner puller, and the forehead wrinkles.",
            "other_au",
        ),
        ("The chest muscles pull the inner brows upward into a slant.", "off_face"),
        ("The weather today is sunny with a light breeze in the city.", "ungrounded"),
        (
            "The inner ends of the eyebrows are pulled upward, wrinkling the centre of the "
            "forehead.",
            None,
        ),
        ("AU1 lifts the inner ends of the eyebrows and wrinkles the forehead.", None),
    ],
)
def test_filter_reasons(text, reason):
    assert check(text, 1, FilterConfig()) == reason


def _frame(texts, au=1):
    return pd.DataFrame({"au": au, "text": texts, "text_hash": [text_hash(t) for t in texts]})


def test_dedup_removes_injected_near_duplicates_but_keeps_meaning_changes():
    base = (
        "The inner ends of the eyebrows are raised, forming horizontal wrinkles across the "
        "centre of the forehead."
    )
    texts = [
        base,
        base.upper(),  # exact after normalisation
        base.replace("centre", "center"),  # near duplicate
        base.replace("The inner", "Both inner"),  # near duplicate
        "The inner ends of the eyebrows are lowered, forming vertical furrows between the brows.",
        "The lip corners are pulled up and back toward the cheekbones in a smile.",
    ]
    kept, counts = dedup_frame(_frame(texts), DedupConfig())
    assert kept["text"].tolist() == [texts[0], texts[4], texts[5]]
    assert counts == {"input": 6, "exact_duplicates": 1, "near_duplicates": 2, "kept": 3}
    # The same text under another AU is not a duplicate: dedup is per AU.
    both = pd.concat([_frame(texts[:1], 1), _frame(texts[:1], 2)])
    assert len(dedup_frame(both, DedupConfig())[0]) == 2


def test_templates_render_every_axis_combination_for_every_au():
    from hiva.facs import AUS
    from hiva.pipeline.generate import prompt_list, render_prompt
    from hiva.prompts.render import load_templates

    for style in ("completion", "chat"):
        tpls = load_templates(None, style)
        for au in AUS:
            plist = prompt_list(au, tpls, seed=0)
            assert len({(p.axes, p.template.id) for p in plist}) == len(plist)
            for p in plist[:3]:
                out = render_prompt(p, style, 5)
                text = out if style == "completion" else out[0]["content"]
                assert AUS[au].name in text and AUS[au].appearance[0] in text


def test_config_from_yaml_with_flags_overriding(tmp_path):
    from hiva.config import load_config
    from hiva.pipeline.generate import GenerateConfig

    f = tmp_path / "c.yaml"
    f.write_text("per_au: 7\naus: disfa\ntemperature: 0.5\n")
    cfg = load_config(GenerateConfig, f, out="x", temperature=0.9)
    assert (cfg.per_au, cfg.aus, cfg.temperature) == (7, (1, 2, 4, 6, 9, 12, 25, 26), 0.9)
    f.write_text("per_auu: 7\n")
    with pytest.raises(HivaError, match=r"unknown .*key.*per_auu"):
        load_config(GenerateConfig, f, out="x")


def test_llm_aliases_resolve_without_network():
    from hiva.pipeline.backends.base import LLM_ALIASES, resolve_llm

    ref = resolve_llm("llama3")
    assert ref.path == LLM_ALIASES["llama3"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert not ref.is_local
    assert resolve_llm(None).gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(HivaError, match="no such alias"):
        resolve_llm("notamodel")


def test_near_duplicate_threshold_direction():
    """Jaccard (word bigrams) to the first text: near 0.82, part 0.20, far 0.0. A pair above the
    threshold is merged, one below is kept, and raising the threshold keeps more."""
    base = ("the inner ends of both eyebrows are pulled upward so that short horizontal "
            "wrinkles form across the middle of the forehead")
    w = base.split()
    near = " ".join(w[:10] + ["sharply"] + w[11:])
    part = " ".join(w[:7] + "and the lids tighten while the cheeks lift up high".split())
    far = "the lip corners are pulled up and back toward the cheekbones in a smile"
    from hiva.corpora.dedup import shingles

    def jac(a, b):
        sa, sb = shingles(a, 2), shingles(b, 2)
        return len(sa & sb) / len(sa | sb)

    assert jac(base, near) == pytest.approx(18 / 22) and jac(base, part) == pytest.approx(0.2)
    texts = [base, near, part, far]
    kept, counts = dedup_frame(_frame(texts), DedupConfig(threshold=0.7))
    assert kept["text"].tolist() == [base, part, far] and counts["near_duplicates"] == 1
    kept, counts = dedup_frame(_frame(texts), DedupConfig(threshold=0.95))
    assert kept["text"].tolist() == texts and counts["near_duplicates"] == 0
