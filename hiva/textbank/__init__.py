"""The text bank as the model reads it: the description embeddings of each AU (from an embed
bundle, or the AU names encoded on the fly), with the fingerprint and encoder that checkpoints
record. Train, evaluate, predict and export load it here; the embed stage (``hiva embed``) only
writes the bundles, with the file names and the cache it imports from here (never the reverse).

Modules: ``bundle`` (bundle files, ``TextBank``, ``bundle_dirs``, ``load_text_bank``), ``cache``
(the content-addressed embedding cache), ``names`` (the names bank). Imports neither torch nor
numpy at module level.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiva.errors import HivaError
from hiva.textbank.bundle import (
    BUNDLE_VERSION,
    EMBEDDINGS,
    INDEX,
    MANIFEST,
    TextBank,
    bundle_dirs,
    load_text_bank,
    shard_dir,
)
from hiva.textbank.names import encode_names_bank, name_row_id, names_texts


@dataclass
class Text:
    """What the model reads as language: a bank (dict AU → M×D tensor) or None (random mode)."""

    bank: dict | None
    fingerprint: str | None
    encoder: str | None
    dim: int | None


def load_text(mode: str, aus, text_bank: str | None = None,
              text_encoder: str | None = None) -> Text:
    """The bank for ``model.text_mode`` ``mode``: ``corpus`` reads the embed bundle
    ``text_bank``; ``names`` encodes the AU names (``text_encoder`` or the embed default);
    ``random`` needs none (the model holds its fixed random bank)."""
    if mode == "random":
        return Text(None, "random", None, None)
    if mode == "names":
        bank = encode_names_bank(aus, text_encoder or None)
    else:
        if not text_bank:
            raise HivaError("model.text_mode 'corpus' needs --text-bank EMBED_DIR (from "
                            "`hiva embed`); or set model.text_mode to names or random")
        bank = load_text_bank(text_bank, aus)
    return Text(dict(bank.embeddings), bank.fingerprint,
                str(bank.encoder_fingerprint or bank.encoder), int(bank.dim))


__all__ = ["BUNDLE_VERSION", "EMBEDDINGS", "INDEX", "MANIFEST", "Text", "TextBank",
           "bundle_dirs", "encode_names_bank", "load_text", "load_text_bank", "name_row_id",
           "names_texts", "shard_dir"]
