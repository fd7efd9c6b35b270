"""Tiny real models for the tests, built offline in seconds: a Llama that really generates
FACS-like text and a sentence-transformer. The root conftest serves them as session fixtures
(``tiny_llm``, ``short_templates``, ``tiny_st``), so every test folder shares one build.

The Llama learns to continue a short prompt (``SHORT_TEMPLATE``: the AU's name and cues, then
``Note:``) with a cue sentence, so generation, parsing, filters and dedup all see plausible text;
nothing is mocked.
"""

from __future__ import annotations

from pathlib import Path

from tests.embed.helpers import WORDS


def _training_lines() -> list[str]:
    from hiva.facs import AUS

    lines = []
    # The AUs the tiny Llama was first trained on: later additions to the table leave it as it is.
    for a in (a for a in AUS.values() if a.number not in (19, 32, 38, 39)):
        head = f"Action: {a.name}. Cues: {'; '.join(a.appearance)}.\nNote:"
        for cue in a.appearance:
            lines.append(f"{head} When the {a.name.lower()} acts, {cue}.\n")
            lines.append(f"{head} A contraction of the {a.muscles[0]} means that {cue}.\n")
    return lines


SHORT_TEMPLATE = "Action: {{ au.name }}. Cues: {{ au.appearance | join('; ') }}.\nNote:"


def write_short_templates(d: Path) -> Path:
    """A template folder holding the one user template the tiny Llama was trained on."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "short.completion.jinja").write_text(SHORT_TEMPLATE)
    return d


def build_tiny_llm(out: Path) -> Path:
    """A 1-layer Llama (hidden 64) with a 600-token BPE, trained for 250 steps to continue
    ``SHORT_TEMPLATE`` prompts with a cue sentence; saved as a transformers folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
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


def _vocab():
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


def build_tiny_st(root: Path) -> str:
    """A 2-layer BERT (hidden 32) with a WordLevel tokenizer, wrapped as a sentence-transformer."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    hf = root / "hf"
    vocab = {w: i for i, w in enumerate(_vocab())}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=64)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(hf)
    fast.save_pretrained(hf)
    word = models.Transformer(str(hf), max_seq_length=64)
    pool = models.Pooling(word.get_embedding_dimension(), "mean")
    st_dir = root / "st"
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(st_dir))
    return str(st_dir)


def write_clip_tokenizer(root: Path) -> dict[str, int]:
    """A CLIP-style word-level tokenizer (``<bos> … <eos>``, pad 0) saved in ``root``; its vocab."""
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", "<eos>", *WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)]
    )
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                            bos_token="<bos>", eos_token="<eos>",
                            model_max_length=32).save_pretrained(root)
    return vocab


def build_tiny_clip(root: Path) -> str:
    """A tiny randomly initialised CLIPModel (vision: 32 px, patch 8, width 32; text: 2 layers
    over the word-level vocab; projection 16) with a CLIP-style tokenizer, in transformers'
    layout: what ``--backbone clip:DIR`` and ``--encoder clip:DIR`` load."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    vocab = write_clip_tokenizer(root)
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                         bos_token_id=2, eos_token_id=3, pad_token_id=0),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(cfg).save_pretrained(root)
    return str(root)
