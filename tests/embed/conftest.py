"""A tiny CLIP text tower, built offline (the tiny sentence-transformer, ``tiny_st``, comes from
the root conftest)."""

from __future__ import annotations

import pytest

from tests.embed.helpers import WORDS


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny CLIP text tower with projection, saved with a CLIP-style tokenizer."""
    import torch
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny_clip")
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", "<eos>", *WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)]
    )
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                            bos_token="<bos>", eos_token="<eos>",
                            model_max_length=32).save_pretrained(root)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                         projection_dim=16, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    CLIPTextModelWithProjection(cfg).save_pretrained(root)
    return str(root)
