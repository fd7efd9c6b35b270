"""CLIP-family image towers as HiVA backbones (``backbone: clip:NAME``), through transformers.

NAME is a Hub id (``openai/clip-vit-base-patch16``) or a local folder holding a CLIP checkpoint
(a full ``CLIPModel`` or a vision tower with projection). The backbone's feature map is the
patch tokens after CLIP's final LayerNorm (B×C×H×W, H = W = input_size / patch size; other input
sizes than the checkpoint's interpolate the position embeddings); ``image_embeds`` is CLIP's own
projected image embedding, in the same space as ``hiva embed --encoder clip:NAME`` writes the
descriptions (what ``hiva evaluate --zero-shot`` compares). Normalisation: the checkpoint's
preprocessor_config.json, else OpenAI CLIP's mean/std.

FaRL and other open_clip-only checkpoints are not loaded here (open_clip is not a dependency);
a CLIP converted to the transformers layout works.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hiva.errors import HivaError
from hiva.hub import clip_tower_config, resolve_model

PREFIX = "clip:"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def is_clip(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PREFIX)


def clip_target(name: str) -> str:
    target = name[len(PREFIX):]
    if not target:
        raise HivaError("backbone clip: needs a model, e.g. clip:openai/clip-vit-base-patch16 "
                        "or clip:/path/to/a/clip/folder")
    return target


def resolve(target: str) -> str:
    """A local folder as it is; a Hub id when the Hub answers, else its folder in the local Hub
    cache, else one line naming what to do (``hiva.hub.resolve_model``)."""
    return resolve_model(target, what="CLIP model", download=False,
                         missing=f"CLIP model {target} is not available here",
                         then="pass --backbone clip:DIR")


def normalisation(path: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    f = Path(path) / "preprocessor_config.json"
    if f.is_file():
        d = json.loads(f.read_text())
        if "image_mean" in d and "image_std" in d:
            return tuple(d["image_mean"]), tuple(d["image_std"])
    return OPENAI_MEAN, OPENAI_STD


class ClipBackbone(nn.Module):
    """A CLIP vision tower: ``forward`` → patch feature map; ``image_embeds`` → CLIP's projected
    image embedding. ``pretrained`` False builds it from the config alone (a checkpoint restore
    then loads every weight)."""

    def __init__(self, name: str, pretrained: bool, input_size: int):
        super().__init__()
        from transformers import CLIPVisionModelWithProjection
        from transformers.utils import logging

        path = resolve(clip_target(name))
        cfg = clip_tower_config(path, "vision")
        if input_size % cfg.patch_size:
            raise HivaError(f"input_size {input_size} is not a multiple of the CLIP patch size "
                            f"{cfg.patch_size}; use e.g. {cfg.image_size}")
        if pretrained:
            level = logging.get_verbosity()
            logging.set_verbosity_error()  # a full CLIPModel's text weights are not needed here
            try:
                self.clip = CLIPVisionModelWithProjection.from_pretrained(path, config=cfg)
            finally:
                logging.set_verbosity(level)
        else:
            self.clip = CLIPVisionModelWithProjection(cfg)
        self.patch = cfg.patch_size
        self.native = cfg.image_size
        self.num_features = cfg.hidden_size
        self.embed_dim = cfg.projection_dim
        self.mean, self.std = normalisation(path)

    def _tower(self, images: torch.Tensor):
        return self.clip.vision_model(pixel_values=images,
                                      interpolate_pos_encoding=images.shape[-1] != self.native)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self._tower(images)
        tokens = self.clip.vision_model.post_layernorm(out.last_hidden_state[:, 1:])
        b, p, c = tokens.shape
        h, w = images.shape[-2] // self.patch, images.shape[-1] // self.patch
        return tokens.transpose(1, 2).reshape(b, c, h, w)

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's image embedding (projected CLS token), B×projection_dim."""
        return self.clip.visual_projection(self._tower(images).pooler_output)
