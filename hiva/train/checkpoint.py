"""Checkpoints: model weights as safetensors (with the run's identity in the header metadata) and
our own training state (optimizer, scheduler, scaler, RNG, counters) as a torch file loaded with
``weights_only=True``. Both written to a temp file and renamed, so a kill never leaves half a file.

Files per fold folder: ``last.safetensors`` + ``last.state.pt`` (resume), ``best.safetensors``
(the epoch chosen on validation). The safetensors metadata holds ``aus``, ``text_fingerprint``,
``text_encoder``, ``model_config`` (JSON), ``epoch``, ``step`` and a ``token`` shared with the
state file so a torn pair is detected.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from hiva.errors import HivaError


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` then rename onto ``path``: readers see the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_weights(model, path: str | Path, meta: dict) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    md = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    atomic_write(Path(path), lambda p: save_file(state, str(p), metadata=md))


def read_meta(path: str | Path) -> dict:
    """The metadata header of a weights file (JSON values decoded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
    out = {}
    for k, v in md.items():
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def check_identity(meta: dict, aus, text_fingerprint: str | None, text_encoder: str | None,
                   path) -> None:
    """Refuse a checkpoint made for another AU list or another text encoder."""
    ck_aus = [int(a) for a in meta.get("aus", [])]
    if ck_aus != [int(a) for a in aus]:
        raise HivaError(
            f"checkpoint {path} was trained for AUs {ck_aus}, this run uses {list(aus)}; "
            "use the same --aus/data, or start a new --out"
        )
    ck_enc = meta.get("text_encoder") or None
    if text_encoder and ck_enc and ck_enc != text_encoder:
        raise HivaError(
            f"checkpoint {path} was trained with text encoder {ck_enc!r}, this run's text bank "
            f"uses {text_encoder!r}; embed with the same encoder or start a new --out"
        )
    ck_fp = meta.get("text_fingerprint") or None
    if text_fingerprint and ck_fp and ck_fp != text_fingerprint:
        raise HivaError(
            f"checkpoint {path} was trained on text bank {ck_fp}, this run's bank is "
            f"{text_fingerprint}; pass the same --text-bank or start a new --out"
        )


def load_weights(model, path: str | Path) -> dict:
    """Load weights strictly; a key mismatch is a HivaError naming the keys. Returns the meta."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise HivaError(f"checkpoint {path} does not exist; check the run folder")
    state = load_file(str(path))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        def some(keys):
            return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

        raise HivaError(
            f"checkpoint {path} does not fit this model: missing {some(missing) or 'none'}; "
            f"unexpected {some(unexpected) or 'none'}; build the model with the run's config"
        )
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise HivaError(
            f"checkpoint {path}: tensor {k} has shape {tuple(state[k].shape)}, the model needs "
            f"{tuple(own[k].shape)} ({len(bad)} differ); build the model with the run's config"
        )
    model.load_state_dict(state, strict=True)
    return read_meta(path)


def save_checkpoint(folder: str | Path, model, state: dict, meta: dict) -> None:
    """``last.state.pt`` then ``last.safetensors``, tied by a fresh token."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    state = dict(state, token=token)
    atomic_write(folder / "last.state.pt", lambda p: torch.save(state, p))
    save_weights(model, folder / "last.safetensors", dict(meta, token=token))


def load_checkpoint(folder: str | Path, model, identity: tuple | None = None
                    ) -> tuple[dict, dict] | None:
    """(state, meta) of ``folder``'s last checkpoint, loaded into ``model``; None if none."""
    import torch

    folder = Path(folder)
    w, s = folder / "last.safetensors", folder / "last.state.pt"
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
        raise HivaError(f"{folder}: last.safetensors and last.state.pt come from different saves "
                        "(killed between the two renames); delete both to restart this fold")
    return state, meta
