"""Parsing, filters, dedup, templates and config: small and exact."""

from __future__ import annotations

import pandas as pd
import pytest

from hiva.corpora.dedup import DedupConfig, dedup_frame
from hiva.corpora.filters import FilterConfig, check, parse_reply, tidy
from hiva.corpora.schema import text_hash
from hiva.errors import HivaError
from hiva.pipeline.backends import make_generator
from hiva.pipeline.backends.base import ModelRef, llm_fingerprint


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
    from hiva.pipeline.prompt_plan import prompt_list, render_prompt
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


def test_completion_notes_start_with_the_part_that_moves():
    """The built-in completion page ends with the note's opener and the part that moves; that
    text starts the description (the model writes the rest), and the AU's openings take turns."""
    from hiva.facs import AUS
    from hiva.pipeline.prompt_plan import prompt_list, render_prompt, reply_prefix
    from hiva.prompts.render import cue_subject, load_templates

    tpls = load_templates(None, "completion")
    for au in AUS:
        assert cue_subject(AUS[au].appearance[0]).strip(), au
        starts = set()
        for p in prompt_list(au, tpls, seed=0)[:8]:
            text = render_prompt(p, "completion", 5)
            prefix = reply_prefix(text)
            assert text.endswith("Note: " + prefix) and prefix
            subject = (AUS[au].openings or (cue_subject(AUS[au].appearance[0]),))[
                p.index % max(len(AUS[au].openings), 1)]
            assert prefix.lower().endswith(subject.lower()), (au, prefix)
            starts.add(subject)
        assert len(starts) == min(len(AUS[au].openings or [1]), 8)
    assert AUS[12].openings[:2] == ("the lip corners", "the corners of the mouth")
    # a chat prompt, or a page ending in a bare label, starts nothing
    assert reply_prefix([{"role": "user", "content": "x"}]) == ""
    assert reply_prefix("Facts.\nNote:") == "" and reply_prefix("a\nNote: the lips") == "the lips"


def test_config_from_yaml_with_flags_overriding(tmp_path):
    from hiva.config import load_config
    from hiva.pipeline.generate_config import GenerateConfig

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


def _generate(**kw):
    from hiva.pipeline.generate_config import GenerateConfig

    return GenerateConfig(out="x", **kw)


def _sampling(**kw):
    from hiva.pipeline.backends.base import SamplingConfig

    return SamplingConfig(**kw)


@pytest.mark.parametrize("make, kw, rule", [
    (_generate, {"per_au": 0}, "--per-au must be ≥ 1"),
    (_generate, {"llm": " "}, "--llm is empty"),
    (_generate, {"backend": "llamacpp"}, "--backend 'llamacpp': choose auto, vllm, transformers"),
    (_generate, {"prompt_style": "fewshot"},
     "--prompt-style 'fewshot': choose auto, chat, completion"),
    (_generate, {"templates": ""}, "--templates is empty"),
    (_generate, {"temperature": -0.1}, "--temperature must be ≥ 0"),
    (_generate, {"top_p": 0.0}, "--top-p must be in (0, 1]"),
    (_generate, {"top_p": 1.5}, "--top-p must be in (0, 1]"),
    (_generate, {"max_new_tokens": 0}, "--max-new-tokens must be ≥ 1"),
    (_generate, {"samples_per_prompt": 0}, "--samples-per-prompt must be ≥ 1"),
    (_generate, {"descriptions_per_reply": 0}, "descriptions_per_reply must be ≥ 1"),
    (_generate, {"batch_size": 0}, "--batch-size must be ≥ 1"),
    (_generate, {"seed": -1}, "--seed must be ≥ 0"),
    (_generate, {"num_shards": 0}, "--num-shards must be ≥ 1"),
    (_generate, {"num_shards": 2, "shard_index": 2},
     "--shard-index must be in 0..1 for --num-shards 2"),
    (_generate, {"shard_index": -1}, "--shard-index must be in 0..0"),
    (_generate, {"max_rounds": 0}, "--max-rounds must be ≥ 1"),
    (_generate, {"dedup_threshold": 0.0}, "--dedup-threshold must be in (0, 1]"),
    (_generate, {"dedup_threshold": 1.2}, "--dedup-threshold must be in (0, 1]"),
    (_generate, {"dtype": "int8"}, "--dtype 'int8': choose auto, bf16, fp16, fp32"),
    (_generate, {"device": "gpu"}, "--device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
    (_generate, {"tensor_parallel_size": 0}, "--tensor-parallel-size must be ≥ 1"),
    (_generate, {"min_words": 0}, "min_words must be ≥ 1"),
    (_generate, {"min_words": 10, "max_words": 5}, "max_words must be ≥ min_words (10)"),
    (_generate, {"min_fact_words": -1}, "min_fact_words must be ≥ 0"),
    (FilterConfig, {"max_repeat_ratio": 1.5}, "max_repeat_ratio must be in [0, 1]"),
    (FilterConfig, {"min_english_ratio": -0.1}, "min_english_ratio must be in [0, 1]"),
    (FilterConfig, {"min_words": 3, "max_words": 2}, "max_words must be ≥ min_words (3)"),
    (_sampling, {"n": 0}, "samples per prompt (n) must be ≥ 1"),
    (_sampling, {"temperature": -1.0}, "temperature must be ≥ 0"),
    (_sampling, {"top_p": 0.0}, "top_p must be in (0, 1]"),
    (_sampling, {"max_new_tokens": 0}, "max_new_tokens must be ≥ 1"),
    (_sampling, {"seed": -5}, "seed must be ≥ 0"),
    (_sampling, {"stop": ("",)}, "stop strings must be non-empty texts"),
    (DedupConfig, {"threshold": 0.0}, "threshold must be in (0, 1]"),
    (DedupConfig, {"threshold": 2.0}, "threshold must be in (0, 1]"),
    (DedupConfig, {"num_perm": 8}, "num_perm must be ≥ 16"),
    (DedupConfig, {"ngram": 0}, "ngram must be ≥ 1"),
    (DedupConfig, {"seed": -1}, "MinHash seed must be ≥ 0"),
])
def test_bad_config_values_are_one_line(make, kw, rule):
    """GenerateConfig, FilterConfig and SamplingConfig say `bad generate config: RULE; fix ...`,
    DedupConfig (shared with merge) `bad dedup config: ...`."""
    stage = "dedup" if make is DedupConfig else "generate"
    with pytest.raises(HivaError) as e:
        make(**kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"bad {stage} config: ") and rule in msg, msg
    assert msg.endswith("; fix the config or flag"), msg


def test_generate_config_good_values_pass():
    cfg = _generate(aus=12, device="cuda:1", dtype="bf16", temperature=0.0, top_p=1.0,
                    dedup_threshold=1.0, min_fact_words=0, num_shards=3, shard_index=2)
    assert cfg.aus == (12,) and cfg.filter_config().min_fact_words == 0
    assert cfg.dedup_config().threshold == 1.0


def test_set_reaches_keys_without_a_flag(monkeypatch, tmp_path):
    """`--set` reaches GenerateConfig keys that have no flag of their own; the named flags win."""
    from typer.testing import CliRunner

    import hiva.pipeline.generate as generate
    from hiva.cli import app

    seen = {}

    def fake_run(cfg, merge=True):
        seen["cfg"] = cfg
        return {"status": "shard-done", "shard": 0, "waiting_for": [1]}

    monkeypatch.setattr(generate, "run", fake_run)
    res = CliRunner().invoke(app, [
        "generate-descriptions", "--out", str(tmp_path / "c"), "--set", "min_fact_words=1",
        "--set", "only_user_templates=true", "--set", "dedup=false", "--set", "per_au=9",
        "--per-au", "7"])
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert (cfg.min_fact_words, cfg.only_user_templates, cfg.dedup, cfg.per_au) == (1, True,
                                                                                   False, 7)
    res = CliRunner().invoke(app, ["generate-descriptions", "--out", str(tmp_path / "c"),
                                   "--set", "descriptions_per_reply=0"])
    assert res.exit_code == 1 and "descriptions_per_reply must be ≥ 1" in str(res.exception)


def test_backends_know_no_implementation_and_both_meet_the_protocol():
    """base and gguf import no implementation; the factory imports one only when asked; both
    implementations provide every member of the Generator protocol."""
    import subprocess
    import sys

    code = ("import sys, hiva.pipeline.backends, hiva.pipeline.backends.gguf, "
            "hiva.pipeline.generate, hiva.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('transformers', 'vllm', 'torch') or m.endswith('_backend')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
    from hiva.pipeline.backends.base import Generator
    from hiva.pipeline.backends.transformers_backend import TransformersGenerator
    from hiva.pipeline.backends.vllm_backend import VLLMGenerator

    members = {m for m in dir(Generator) if not m.startswith("_")} | set(
        Generator.__annotations__)
    assert {"count_tokens", "unload", "load", "generate", "fingerprint", "model"} <= members
    for cls in (TransformersGenerator, VLLMGenerator):
        g = cls(ModelRef("x", "/nowhere"))
        assert all(hasattr(g, m) for m in members), cls
    with pytest.raises(HivaError, match="--backend llamacpp: choose vllm, transformers"):
        make_generator("llamacpp", ModelRef("x", "/nowhere"))


def test_llm_fingerprint_of_a_folder(tmp_path):
    """config.json plus name, size and first MiB of each weight file: other bytes past the
    first MiB leave it unchanged, a changed config changes it."""
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * (2 << 20))
    ref = ModelRef("x", str(tmp_path))
    fp = llm_fingerprint(ref)
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 16
    (tmp_path / "model.safetensors").write_bytes(b"\0" * (1 << 20) + b"\1" * (1 << 20))
    assert llm_fingerprint(ref) == fp
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert llm_fingerprint(ref) != fp
    assert llm_fingerprint(ModelRef("x", "org/model", None, False)) == "hub:org/model"
