"""The names bank: one text per AU ("AU12 Lip Corner Puller"), for the names-only ablation
(``model.text_mode names``, ``hiva embed --names-only``)."""

from __future__ import annotations

import hashlib

from hiva.facs import AUS, parse_aus
from hiva.runtime import cache_dir as default_cache_dir
from hiva.textbank.bundle import TextBank
from hiva.textbank.cache import EmbeddingCache, encode_texts
from hiva.textbank.encoders import load_encoder


def names_texts(aus) -> list[tuple[int, str]]:
    """``[(au, "AU12 Lip Corner Puller"), ...]`` for the AU numbers ``aus``."""
    return [(a, f"{AUS[a].code} {AUS[a].name}") for a in aus]


def name_row_id(au: int) -> str:
    """The row id of an AU's name text, in a names bank and a ``--names-only`` bundle alike."""
    return f"name-AU{au}"


def encode_names_bank(aus, encoder_spec: str | None = None, cache_dir: str | None = None,
                      **encoder_kwargs) -> TextBank:
    """A bank with one text per AU ("AU12 Lip Corner Puller") for the names-only ablation.
    ``encoder_kwargs`` go to ``load_encoder`` (device, dtype, max_length, normalize); the
    vectors come from (and go to) the embedding cache the embed stage uses."""
    import torch

    aus = parse_aus(aus) if isinstance(aus, str) else tuple(int(a) for a in aus)
    enc = load_encoder(encoder_spec, **encoder_kwargs)
    cache = EmbeddingCache(cache_dir or default_cache_dir(), enc.identity, enc.identity_hash,
                           enc.dim)
    pairs = names_texts(aus)
    emb, _ = encode_texts(enc, [t for _, t in pairs], cache, 64, 16, progress=False)
    fp = hashlib.sha256(emb.tobytes()).hexdigest()[:24]
    return TextBank(aus=aus, embeddings={a: torch.from_numpy(emb[i:i + 1].copy())
                                         for i, (a, _) in enumerate(pairs)},
                    texts={a: [t] for a, t in pairs}, row_ids={a: [name_row_id(a)] for a in aus},
                    encoder=enc.name, encoder_fingerprint=enc.identity_hash, dim=enc.dim,
                    fingerprint=fp)
