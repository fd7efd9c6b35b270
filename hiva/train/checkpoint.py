"""Training checkpoints: the model weights (``hiva.model.factory.save_weights``: safetensors with
the run's identity in the header) and our own training state (optimizer, scheduler, scaler, RNG,
counters) as a torch file loaded with ``weights_only=True``. Both written to a temp file and
renamed, so a kill never leaves half a file.

Files per fold folder: ``last.safetensors`` + ``last.state.pt`` (resume), ``best.safetensors``
(the epoch chosen on validation). The safetensors metadata holds ``aus``, ``text_fingerprint``,
``text_encoder``, ``model_config`` (JSON), ``epoch``, ``step`` and a ``token`` shared with the
state file so a torn pair is detected.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from hiva.errors import HivaError
from hiva.model.factory import check_identity, load_weights, read_meta, save_weights
from hiva.runs import LAST_STATE, weights_file
from hiva.runtime import atomic_write


def save_checkpoint(folder: str | Path, model, state: dict, meta: dict) -> None:
    """``last.state.pt`` then ``last.safetensors``, tied by a fresh token."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    state = dict(state, token=token)
    atomic_write(folder / LAST_STATE, lambda p: torch.save(state, p))
    save_weights(model, weights_file(folder, "last"), dict(meta, token=token))


def load_checkpoint(folder: str | Path, model, identity: tuple | None = None
                    ) -> tuple[dict, dict] | None:
    """(state, meta) of ``folder``'s last checkpoint, loaded into ``model``; None if none."""
    import torch

    folder = Path(folder)
    w, s = weights_file(folder, "last"), folder / LAST_STATE
    if not w.is_file():
        return None
    if not s.is_file():
        raise HivaError(f"{w} has no training state beside it ({s.name}); delete {w} to restart "
                        "this fold")
    if identity is not None:  # before the weights, so a wrong AU list is named as such
        check_identity(read_meta(w), *identity, w)
    meta = load_weights(model, w)
    state = torch.load(s, map_location="cpu", weights_only=True)
    if state.get("token") != meta.get("token"):
        raise HivaError(f"{folder}: {w.name} and {s.name} come from different saves (killed "
                        "between the two renames); delete both to restart this fold")
    return state, meta
