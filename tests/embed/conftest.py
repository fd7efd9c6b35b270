"""A tiny CLIP text tower, built offline (the tiny sentence-transformer, ``tiny_st``, comes from
the root conftest)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny CLIP text tower with projection, saved with a CLIP-style tokenizer."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from tests.tiny_models import write_clip_tokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    vocab = write_clip_tokenizer(root)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                         projection_dim=16, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    CLIPTextModelWithProjection(cfg).save_pretrained(root)
    return str(root)
