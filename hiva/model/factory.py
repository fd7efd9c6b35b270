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
from pathlib import Path

from hiva.errors import HivaError, some
from hiva.model.archs import build_network
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
            f"{text_fingerprint}; pass the --text-bank it was trained with (resuming training: "
            "or start a new --out)"
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


def read_checkpoint(path: str | Path):
    """``(ModelConfig, meta)`` of a weights file written by ``hiva train``."""
    from hiva.config import coerce_fields
    from hiva.model.config import ModelConfig

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
    from dataclasses import replace

    check_identity(meta, mc.aus, text.fingerprint, text.encoder, path)
    model = build_model(replace(mc, pretrained=None), device, channels_last)
    load_weights(model, path)
    return model.eval()
