"""A tiny sentence-transformer and a tiny CLIP text tower, built offline, and corpus helpers."""

from __future__ import annotations

import pytest

from tests.embed.helpers import WORDS


def _vocab():
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory):
    """A 2-layer BERT (hidden 32) with a WordLevel tokenizer, wrapped as a sentence-transformer."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny_st")
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
