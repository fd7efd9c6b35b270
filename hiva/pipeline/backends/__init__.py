"""LLM backends behind one protocol (``base.Generator``), and picking one: ``select_backend``
resolves ``--backend auto``, ``check_llm`` checks the weights before any output is touched, and
``make_generator`` builds the named implementation. The implementations (``transformers_backend``,
``vllm_backend``) are imported only inside ``make_generator``: both pull in heavy libraries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hiva.errors import HivaError
from hiva.hub import resolve_model
from hiva.pipeline.backends.base import BACKENDS, Generator, ModelRef, folder_ref
from hiva.pipeline.backends.gguf import check_gguf


def select_backend(choice: str) -> str:
    """``auto`` → vllm when vllm imports and a GPU is visible, else transformers."""
    if choice != "auto":
        return choice
    if importlib.util.find_spec("vllm") is None:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


def check_llm(ref: ModelRef) -> ModelRef:
    """Checks that need no model load, run before any output is touched: a Hub id needs the Hub
    (a fast probe, never the five-retry look-ups) or a copy in the local Hub cache, which is then
    used as a local folder with no network (``hiva.hub.resolve_model``; a GGUF repo's snapshot
    loads its one .gguf file); a GGUF file must parse. Returns the ref to load."""
    if not ref.is_local:
        path = resolve_model(ref.path, what="LLM", download=False,
                             missing=f"weights for --llm {ref.name} ({ref.path}) are not "
                                     "available here",
                             then="pass --llm DIR (gated models need `hf auth login` and an "
                                  "accepted licence)")
        if path == ref.path:
            return ref
        ref = folder_ref(ref.name, Path(path))
    if ref.gguf_file:
        check_gguf(ref)
    return ref


def make_generator(backend: str, ref: ModelRef, **kw) -> Generator:
    """The ``backend`` implementation for ``ref`` (not loaded yet); ``kw`` are its settings
    (device, dtype, tensor_parallel_size, trust_remote_code, seed; each takes what it uses)."""
    # A registry: the implementation chosen is imported, and only it (tests/test_imports_at_top.py)
    if backend == "vllm":
        from hiva.pipeline.backends.vllm_backend import VLLMGenerator

        return VLLMGenerator(ref, **kw)
    if backend == "transformers":
        from hiva.pipeline.backends.transformers_backend import TransformersGenerator

        return TransformersGenerator(ref, **kw)
    choices = ", ".join(b for b in BACKENDS if b != "auto")
    raise HivaError(f"--backend {backend}: choose {choices} (or auto)")
