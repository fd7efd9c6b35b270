"""The text bank as the model reads it: the description embeddings of each AU (from an embed
bundle, or the AU names encoded on the fly), with the fingerprint and encoder that checkpoints
record. Train, evaluate, predict and export load it here; the embed stage writes the bundles.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiva.errors import HivaError


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
    try:
        from hiva.pipeline import embed
    except ImportError:
        raise HivaError("the embed stage (hiva.pipeline.embed) is not installed; "
                        "use model.text_mode random") from None
    if mode == "names":
        bank = (embed.encode_names_bank(aus, text_encoder) if text_encoder
                else embed.encode_names_bank(aus))
    else:
        if not text_bank:
            raise HivaError("model.text_mode 'corpus' needs --text-bank EMBED_DIR (from "
                            "`hiva embed`); or set model.text_mode to names or random")
        bank = embed.load_text_bank(text_bank, aus)
    enc = getattr(bank, "encoder_fingerprint", None) or getattr(bank, "encoder", None)
    return Text(dict(bank.embeddings), getattr(bank, "fingerprint", None),
                None if enc is None else str(enc), int(bank.dim))
