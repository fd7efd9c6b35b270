"""State dicts in ME-GraphAU's / OpenGraphAU's own key layout, made from a hiva ``MEGraphAU`` (the
inverse of ``hiva.predict.import_graphau.convert``, written independently for ResNet backbones), so
tests can check the import without their code."""

from __future__ import annotations

import re

import torch


def to_their_layout(model, source: str) -> dict:
    sd = model.state_dict()
    n, c = model.au_blocks.weight.shape[:2]
    lin = "head.main_class_linears" if source == "opengraphau" else "head.class_linears"
    out = {}
    for k, v in sd.items():
        if k.startswith("backbone.model."):
            out["backbone." + k.removeprefix("backbone.model.")] = v
        elif k.startswith("global_linear."):
            out[k] = v
        elif k == "sc":
            out["head.main_sc" if source == "opengraphau" else "head.sc"] = v
        elif k == "side_sc":
            out["head.sub_sc"] = v
        elif k.startswith(("edge_extractor.", "edge_fc.")):
            out["head." + k] = v
        elif m := re.fullmatch(r"gnn\.(\d)\.(\w+)\.(.+)", k):
            i, name, rest = int(m.group(1)), m.group(2), m.group(3)
            if source == "opengraphau":
                out[f"head.gnn.graph_layers.{i}.{name}.{rest}"] = v
            else:
                out[f"head.gnn.{name}{i + 1}.{rest}"] = v
        elif k.startswith("gnn."):
            out["head." + k] = v
    for i in range(n):
        out[f"{lin}.{i}.fc.weight"] = sd["au_blocks.weight"][i].clone()
        out[f"{lin}.{i}.fc.bias"] = sd["au_blocks.bias"][i].clone()
        for part in ("weight", "bias", "running_mean", "running_var"):
            out[f"{lin}.{i}.bn.{part}"] = sd[f"au_blocks.bn.{part}"][i * c:(i + 1) * c].clone()
        out[f"{lin}.{i}.bn.num_batches_tracked"] = sd["au_blocks.bn.num_batches_tracked"].clone()
    return out


def randomise_norms(model, seed: int | torch.Generator = 0) -> None:
    """BatchNorm statistics, affine parameters and step counters away from their defaults, so
    eval-mode outputs depend on every one of them and a conversion that drops a counter shows.
    ``seed``: a seed, or the generator to draw from (``benchmarks/parity_megraphau.py``)."""
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)


def save_their_checkpoint(model, source: str, path) -> None:
    """As their trainers save: ``{"epoch", "state_dict"}`` with DataParallel's ``module.``."""
    sd = to_their_layout(model, source)
    torch.save({"epoch": 19, "state_dict": {"module." + k: v for k, v in sd.items()}}, path)
