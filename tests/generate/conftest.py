"""A tiny real Llama, built and briefly trained offline, that really generates FACS-like text.

It learns to continue a short prompt (the ``short_templates`` user template: the AU's name and
cues, then ``Note:``) with a cue sentence, so generation, parsing, filters and dedup all see
plausible text; nothing is mocked.
"""

from __future__ import annotations

import pytest


def _training_lines() -> list[str]:
    from hiva.facs import AUS

    lines = []
    for a in AUS.values():
        head = f"Action: {a.name}. Cues: {'; '.join(a.appearance)}.\nNote:"
        for cue in a.appearance:
            lines.append(f"{head} When the {a.name.lower()} acts, {cue}.\n")
            lines.append(f"{head} A contraction of the {a.muscles[0]} means that {cue}.\n")
    return lines


SHORT_TEMPLATE = "Action: {{ au.name }}. Cues: {{ au.appearance | join('; ') }}.\nNote:"


@pytest.fixture(scope="session")
def short_templates(tmp_path_factory):
    d = tmp_path_factory.mktemp("templates")
    (d / "short.completion.jinja").write_text(SHORT_TEMPLATE)
    return d


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    lines = _training_lines()
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: Note:{% endif %}"
    )
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    ids = [fast(line)["input_ids"] for line in lines]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(250):
        idx = torch.randint(len(ids), (16,), generator=g).tolist()
        batch = fast.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out
