"""The architectures hiva builds, one entry each (timm's ``register_model`` habit): how to build
the network and its loss, whether it reads text, what its activation maps are, the loss terms it
adds, its config rules and its one-line summary. Nothing outside this module branches on
``model.arch``; a third architecture is one ``register`` call (and its modules).

Torch-free: the network and loss are named as ``module:attribute`` and imported when built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from hiva.errors import HivaError


@dataclass(frozen=True)
class Arch:
    name: str  # the value of ``model.arch``
    title: str  # how it is printed
    network: str  # "module:Class", built as Class(model_config)
    loss: str  # "module:Class", built as Class(model_config, au_weights)
    reads_text: bool  # a language path: needs a text bank (per its text_mode) and draws on it
    maps: str  # what its activation maps are: "attention" or "feature energy"
    extra_loss_terms: tuple[str, ...] = ()  # logged per epoch beside total, cls, align, map_kl
    side_outputs: bool = False  # may have left/right outputs (``side_aus``: OpenGraphAU)
    check: Callable[[Any], None] = field(default=lambda mc: None)  # its own config rules
    describe: Callable[[Any], str] = field(default=lambda mc: "")  # summary line, after title
    card_tag: str = ""  # the Hub tag of its exported model cards
    card_intro: Callable[[dict], str] = field(default=lambda mc: "")  # the card's first paragraph


ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    ARCHS[arch.name] = arch
    return arch


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise HivaError(f"model arch {name!r} is not one of {', '.join(ARCHS)}")
    return ARCHS[name]


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


def build_network(mc):
    """The network of ``mc.arch`` (on the CPU, in train mode)."""
    return _load(get_arch(mc.arch).network)(mc)


def build_arch_loss(mc, au_weights=None):
    """The training loss of ``mc.arch``."""
    return _load(get_arch(mc.arch).loss)(mc, au_weights)


def _check_megraphau(mc) -> None:
    if mc.backbone.startswith("clip:"):
        raise HivaError("arch megraphau takes a timm backbone (resnet, swin, lite0), not a CLIP "
                        "tower")
    if mc.map_prior != "none":
        raise HivaError("map_prior applies to arch hiva (ME-GraphAU has no attention to bias); "
                        "set map_prior none")
    if mc.edge_weight < 0:
        raise HivaError(f"edge_weight must be ≥ 0, got {mc.edge_weight}")


register(Arch(
    name="hiva", title="HiVA", network="hiva.model.hiva:HiVA", loss="hiva.model.losses:HiVALoss",
    reads_text=True, maps="attention",
    describe=lambda mc: (f"d={mc.d_model}  heads={mc.num_heads}  depth={mc.depth}  "
                         f"graph={mc.graph}  ddca={mc.ddca}  cdca={mc.cdca}  head={mc.head}  "
                         f"text={mc.text_mode}"),
    card_tag="vision-language",
    card_intro=lambda mc: (
        "Trained with hiva, an implementation of *Hierarchical Vision-Language Interaction for "
        "Facial Action Unit Detection* (Li et al., arXiv 2602.14425): LLM-written AU descriptions "
        "as semantic priors, an AU-aware dynamic graph, DDCA and CDCA cross-attention. The "
        "layer-level design is hiva's reading of the paper's abstract, not the authors' code."),
))
register(Arch(
    name="megraphau", title="ME-GraphAU", network="hiva.model.megraphau:MEGraphAU",
    loss="hiva.model.losses:GraphAULoss", reads_text=False, maps="feature energy",
    extra_loss_terms=("edge",), side_outputs=True, check=_check_megraphau,
    describe=lambda mc: (f"stage {mc.graph_stage}  K={mc.k}  metric={mc.graph_metric}  "
                         f"variant={mc.graph_variant}"),
    card_tag="me-graphau",
    card_intro=lambda mc: (
        "Trained with hiva's implementation of ME-GraphAU (Luo et al., IJCAI 2022), stage "
        f"{mc.get('graph_stage')}, the AU literature's reference model; it reads no text."),
))
