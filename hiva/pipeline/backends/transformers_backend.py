"""transformers backend: Hugging Face folders, Hub ids and GGUF files (converted once to a plain
HF folder), batched sampling with ``num_return_sequences`` and stop strings. Runs on CPU or GPU."""

from __future__ import annotations

from hiva.pipeline.backends.base import (
    GeneratorBase,
    ModelRef,
    Prompt,
    SamplingConfig,
    not_available,
)
from hiva.pipeline.backends.gguf import gguf_to_hf
from hiva.runtime import resolve_device, weights_dtype


class TransformersGenerator(GeneratorBase):
    backend = "transformers"

    def __init__(
        self,
        ref: ModelRef,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        **_ignored,
    ):
        super().__init__(ref)
        self._device = device
        self._dtype = dtype
        self._trust = trust_remote_code

    def load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(self._device)
        dtype = weights_dtype(self._dtype, device)
        path = self.ref.path
        if self.ref.gguf_file:
            path = gguf_to_hf(self.ref)  # see there: the plain copy loads and runs faster
        try:
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=self._trust)
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype, trust_remote_code=self._trust
            )
        except (OSError, ValueError) as e:
            raise not_available(self.ref, e) from None
        tok.padding_side = "left"  # decoder-only batching: pad on the left
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.tokenizer = tok
        self.model = model.to(device).eval()
        self.device = device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _text(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=False
        )

    def generate(self, prompts: list[Prompt], sampling: SamplingConfig) -> list[list[str]]:
        import torch

        if not prompts:
            return []
        texts = [self._text(p) for p in prompts]
        # Chat templates already hold the BOS token; don't add a second one.
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=isinstance(prompts[0], str)
        ).to(self.device)
        torch.manual_seed(sampling.seed)
        kw = {}
        if sampling.stop:
            kw = {"stop_strings": list(sampling.stop), "tokenizer": self.tokenizer}
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                do_sample=sampling.temperature > 0,
                temperature=sampling.temperature if sampling.temperature > 0 else None,
                top_p=sampling.top_p if sampling.temperature > 0 else None,
                max_new_tokens=sampling.max_new_tokens,
                num_return_sequences=sampling.n,
                pad_token_id=self.tokenizer.pad_token_id,
                **kw,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        decoded = [_cut(d, sampling.stop) for d in decoded]
        n = sampling.n
        return [decoded[i * n : (i + 1) * n] for i in range(len(prompts))]


def _cut(text: str, stops: tuple[str, ...]) -> str:
    """Stop strings are included in transformers' output; cut at the first one."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]
