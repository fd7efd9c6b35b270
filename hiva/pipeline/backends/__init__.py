"""LLM backends behind one protocol (``base.Generator``), and picking one: ``select_backend``
resolves ``--backend auto``, ``check_llm`` checks the weights before any output is touched, and
``make_generator`` builds the named implementation. The implementations (``transformers_backend``,
``vllm_backend``) are imported only inside ``make_generator``: both pull in heavy libraries."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

from hiva.errors import HivaError
from hiva.pipeline.backends.base import BACKENDS, Generator, ModelRef, not_available


def select_backend(choice: str) -> str:
    """``auto`` → vllm when vllm imports and a GPU is visible, else transformers."""
    if choice != "auto":
        return choice
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


def check_llm(ref: ModelRef) -> ModelRef:
    """Checks that need no model load, run before any output is touched: a GGUF file must parse;
    a Hub id needs the Hub (a fast probe, never the five-retry look-ups) or a copy in the local
    Hub cache, which is then used with no network. Returns the ref to load."""
    if ref.gguf_file:
        from hiva.pipeline.backends.gguf import check_gguf

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


def make_generator(backend: str, ref: ModelRef, **kw) -> Generator:
    """The ``backend`` implementation for ``ref`` (not loaded yet); ``kw`` are its settings
    (device, dtype, tensor_parallel_size, trust_remote_code, seed; each takes what it uses)."""
    if backend == "vllm":
        from hiva.pipeline.backends.vllm_backend import VLLMGenerator

        return VLLMGenerator(ref, **kw)
    if backend == "transformers":
        from hiva.pipeline.backends.transformers_backend import TransformersGenerator

        return TransformersGenerator(ref, **kw)
    choices = ", ".join(b for b in BACKENDS if b != "auto")
    raise HivaError(f"--backend {backend}: choose {choices} (or auto)")
