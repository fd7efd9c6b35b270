"""Building a HiVA model and moving its weights in and out: one home for train, predict, export.

Weights are safetensors files whose header carries the run's identity (``aus``,
``text_fingerprint``, ``text_encoder``, ``model_config`` as JSON, ``epoch``, ``step``); loading is
strict, and a checkpoint made for other AUs or another text encoder is refused by name.
Restoring a trained model is two calls, whoever does it (``hiva evaluate``, ``hiva predict``,
``hiva explain``, ``hiva export``): ``read_checkpoint`` (its architecture and header), then, with
the text bank the caller loaded for it, ``restore`` (identity checks, build, strict load, eval).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hiva.config import coerce_fields
from hiva.errors import HivaError, some
from hiva.model.archs import build_network
from hiva.model.config import ModelConfig
from hiva.runtime import atomic_write


def build_model(mc, device, channels_last: bool):
    """The network of ``mc.arch`` (``hiva.model.archs``) on ``device``."""
    import torch

    model = build_network(mc).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def save_weights(model, path: str | Path, meta: dict) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    md = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    atomic_write(Path(path), lambda p: save_file(state, str(p), metadata=md))


REFETCH = "train or export it again, or download it again"


def _unreadable(path, what: str, fix: str, e: Exception) -> HivaError:
    return HivaError(f"{what} {path} is not a readable safetensors file (cut short or not "
                     f"safetensors: {e}); {fix}")


def read_tensors(path: str | Path, what: str = "checkpoint", fix: str = REFETCH) -> dict:
    """The tensors of a safetensors file a user hands over (a checkpoint, ``init_from``,
    pretrained weights), on the CPU; a file cut short or of another kind is one line naming
    ``what`` and ``fix``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise _unreadable(path, what, fix, e) from None


def read_meta(path: str | Path) -> dict:
    """The metadata header of a weights file (JSON values decoded)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise _unreadable(path, "checkpoint", REFETCH, e) from None
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
            f"{text_fingerprint}; pass the --text-bank it was trained with (resuming training: "
            "or start a new --out)"
        )


def fitting(own: dict, state: dict) -> dict:
    """The tensors of ``state`` that ``own`` (a model's state_dict) has under the same name and
    with the same shape."""
    return {k: t for k, t in state.items()
            if k in own and tuple(t.shape) == tuple(own[k].shape)}


def check_fit(own: dict, state: dict, what: str, fix: str,
              labels: tuple[str, str] = ("missing", "unexpected"),
              more: tuple[str, ...] = ()) -> None:
    """Whether the weights ``state`` fit a model whose state_dict is ``own``: the same names with
    the same shapes, else one HivaError line "WHAT: missing …; unexpected …; wrong shape …;
    FIX". ``labels`` name the missing and the unexpected keys (``model tensors nothing
    fills:``), ``more`` adds the caller's own findings first."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    fit = fitting(own, state)
    wrong = [k for k in own if k in state and k not in fit]
    parts = list(more)
    for label, keys in zip(labels, (missing, unexpected)):
        if keys:
            parts.append(f"{label} {some(sorted(keys))}")
    if wrong:
        k = wrong[0]
        parts.append(f"wrong shape {some(wrong)} ({k}: {tuple(state[k].shape)}, the model's "
                     f"{tuple(own[k].shape)})")
    if parts:
        raise HivaError(f"{what}: {'; '.join(parts)}; {fix}")


def load_weights(model, path: str | Path) -> dict:
    """Load weights strictly; a key mismatch is a HivaError naming the keys. Returns the meta."""
    path = Path(path)
    if not path.is_file():
        raise HivaError(f"checkpoint {path} does not exist; check the run folder")
    state = read_tensors(path)
    check_fit(model.state_dict(), state, f"checkpoint {path} does not fit this model",
              "build the model with the run's config")
    model.load_state_dict(state, strict=True)
    return read_meta(path)


def read_checkpoint(path: str | Path):
    """``(ModelConfig, meta)`` of a weights file written by ``hiva train``."""
    path = Path(path)
    if not path.is_file():
        raise HivaError(f"checkpoint {path} does not exist; check the run folder")
    meta = read_meta(path)
    if "model_config" not in meta:
        raise HivaError(f"{path} carries no model_config; it was not written by hiva train")
    fields = coerce_fields(ModelConfig, meta["model_config"], f"model config of {path}")
    return ModelConfig(**fields), meta


def restore(mc, path: str | Path, meta: dict, device, text, channels_last: bool = False):
    """The trained model of ``path`` on ``device``, in eval mode: ``text`` (a
    ``hiva.textbank.Text``) must be the bank it was trained with; the pretrained backbone file
    is not read, since the checkpoint overwrites every weight."""
    check_identity(meta, mc.aus, text.fingerprint, text.encoder, path)
    model = build_model(replace(mc, pretrained=None), device, channels_last)
    load_weights(model, path)
    return model.eval()
