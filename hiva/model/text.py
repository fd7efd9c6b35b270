"""Choosing which cached description embeddings the model sees in a step.

Reads the embed stage's text bank (``{au: Tensor[M_i, D]}``, from ``load_text_bank``) and returns
one padded tensor N×M×D with a mask N×M (True = a real description). Imports torch only.
"""

from __future__ import annotations

import torch

from hiva.errors import HivaError

EVAL_SEED = 0  # evaluation always sees the same subset, whatever the caller's RNG did


def sample_text(
    bank: dict[int, torch.Tensor],
    aus,
    m: int | None,
    generator: torch.Generator | None = None,
    train: bool = True,
    with_index: bool = False,
):
    """Training: ``m`` descriptions per AU drawn at random (with replacement only when an AU has
    fewer than ``m``), so the corpus acts as augmentation. Evaluation: a fixed seeded subset of
    ``m`` (or all when ``m`` is None or larger), padded and masked where AUs have fewer.
    ``with_index``: also return, per AU, the bank rows behind each position (a list of lists).
    """
    missing = [a for a in aus if a not in bank or len(bank[a]) == 0]
    if missing:
        raise HivaError(
            f"the text bank has no descriptions for AU {', '.join(map(str, missing))}; "
            "embed a corpus that covers these AUs (hiva embed --aus ...)"
        )
    if m is not None and m < 1:
        raise HivaError(f"descriptions per AU must be ≥ 1, got {m}")
    if not train:
        generator = torch.Generator().manual_seed(EVAL_SEED)
    picks, rows = [], []
    for a in aus:
        e = bank[a]
        n = len(e)
        if m is None:
            idx = torch.arange(n)
        elif train and n < m:
            idx = torch.randint(n, (m,), generator=generator)
        else:
            idx = torch.randperm(n, generator=generator)[: min(m, n)]
            if not train:
                idx = idx.sort().values
        picks.append(e[idx])
        rows.append(idx.tolist())
    width = max(len(p) for p in picks)
    dim = picks[0].shape[-1]
    text = picks[0].new_zeros(len(picks), width, dim)
    mask = torch.zeros(len(picks), width, dtype=torch.bool)
    for i, p in enumerate(picks):
        text[i, : len(p)] = p
        mask[i, : len(p)] = True
    return (text, mask, rows) if with_index else (text, mask)
