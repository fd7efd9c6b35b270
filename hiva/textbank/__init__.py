"""The text bank as the model reads it: the description embeddings of each AU (from an embed
bundle, or the AU names encoded on the fly), with the fingerprint and encoder that checkpoints
record. Train, evaluate, predict and export load it here; the embed stage (``hiva embed``) only
writes the bundles, with the file names and the cache it imports from here (never the reverse).

Modules: ``bundle`` (bundle files, ``TextBank``, ``bundle_dirs``, ``load_text_bank``), ``cache``
(the content-addressed embedding cache), ``names`` (the names bank), ``controls`` (the control
banks of the text ablations and whitening). Imports neither torch nor
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
    """What the model reads as language: a bank (dict AU → M×D tensor, with the texts behind each
    row when there are any) or None (``learned``: the model holds free vectors)."""

    bank: dict | None
    fingerprint: str | None
    encoder: str | None
    dim: int | None
    texts: dict | None = None  # AU → the texts of its bank rows (None: random/learned)


def load_text(mc, aus, text_bank: str | None = None, text_encoder: str | None = None) -> Text:
    """The bank for ``mc.text_mode`` (``mc`` a ``ModelConfig``; the controls are built in
    ``hiva.textbank.controls``):

    - ``corpus`` reads the embed bundle ``text_bank``;
    - ``names`` encodes the AU names (``text_encoder`` or the embed default);
    - ``shuffled``: the corpus with whole AU banks deranged across AUs (seed ``mc.text_seed``);
    - ``neighbour``: each AU reads the corpus bank of its nearest other AU;
    - ``random``: isotropic random unit vectors, as many per AU as the corpus has (or
      ``mc.random_text_tokens`` without ``text_bank``), seed ``mc.text_seed``;
    - ``random_cov``: as many rows, drawn with the corpus's pooled between- and within-AU
      covariance;
    - ``learned`` needs none (the model holds free per-AU vectors);
    - an ``arch`` without a language path (``megraphau``) reads none, whatever its text_mode.

    ``mc.text_whiten``: the corpus is whitened before shuffled/neighbour reassign it (whitening
    commutes with moving whole AU banks); names and the random banks are whitened as drawn."""
    from hiva.textbank import controls

    mode = mc.text_mode
    if getattr(mc, "arch", "hiva") != "hiva":
        return Text(None, None, None, None)
    if mode == "learned":
        return Text(None, "learned", None, None)
    if mode == "names":
        bank = encode_names_bank(aus, text_encoder or None)
    elif text_bank:
        bank = load_text_bank(text_bank, aus)
    elif mode == "random":
        bank = None
    else:
        raise HivaError(f"model.text_mode {mode!r} needs --text-bank EMBED_DIR (from "
                        "`hiva embed`); or set model.text_mode to names, learned or random")
    whiten = bool(getattr(mc, "text_whiten", False))
    if mode in ("random", "random_cov"):
        if mode == "random":
            dim = bank.dim if bank is not None else mc.text_width
            counts = ({a: len(bank.embeddings[a]) for a in aus} if bank is not None
                      else dict.fromkeys(aus, mc.random_text_tokens))
            emb, fp = controls.random_bank(aus, counts, dim, mc.text_seed)
        else:
            dim = bank.dim
            emb, fp = controls.random_cov_bank(bank.embeddings, aus, mc.text_seed)
        if whiten:
            emb, fp = controls.whiten_bank(emb, aus), controls.fingerprint(f"whiten:{fp}")
        return Text(emb, fp, None, dim)
    emb, texts, fp = dict(bank.embeddings), dict(bank.texts), bank.fingerprint
    if whiten:
        emb, fp = controls.whiten_bank(emb, aus), controls.fingerprint(f"whiten:{fp}")
    if mode in ("shuffled", "neighbour"):
        if mode == "shuffled":
            emb, texts, source = controls.shuffled_bank(emb, texts, aus, mc.text_seed)
            key = f"shuffled:{mc.text_seed}:{fp}:"
        else:  # the nearest other AU in the bank the model reads (whitened when whiten)
            emb, texts, source = controls.neighbour_bank(emb, texts, aus)
            key = f"neighbour:{fp}:"
        fp = controls.fingerprint(key + ",".join(f"{a}<{source[a]}" for a in aus))
    return Text(emb, fp, str(bank.encoder_fingerprint or bank.encoder), int(bank.dim), texts)


__all__ = ["BUNDLE_VERSION", "EMBEDDINGS", "INDEX", "MANIFEST", "Text", "TextBank",
           "bundle_dirs", "encode_names_bank", "load_text", "load_text_bank", "name_row_id",
           "names_texts", "shard_dir"]
