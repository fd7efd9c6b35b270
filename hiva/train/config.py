"""``TrainConfig``: everything ``hiva train`` needs, as one frozen, validated dataclass.

The architecture lives in ``model``, a ``hiva.model.ModelConfig`` (given as a mapping of its
fields in YAML or ``--set model.KEY=VALUE``); its ``aus`` are filled from the data at run time,
so ``model_config(aus)`` gives the one a run builds. Imports without torch. The resolved config
is written to ``RUN_DIR/config.yaml`` and into every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from hiva.config import check_config, coerce_fields, count_rule
from hiva.errors import HivaError
from hiva.facs import parse_aus
from hiva.model.config import ModelConfig

AMP_MODES = ("auto", "bf16", "fp16", "off")
FOLD_SCHEMES = ("auto", "manifest", "bp4d", "disfa", "kfold")
LABEL_UNITS = ("subject", "segment")  # as hiva.data.folds.LABEL_UNITS (that module needs pandas)
SCHEDULES = ("epochs", "steps")
FEATURE_DTYPES = ("float16", "float32")  # how the heads-only feature cache stores maps


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol and optimisation. ``data``: a manifest path, ``bp4d:DIR`` or
    ``disfa:DIR``. ``folds``: which held-out folds to run (empty = all ``num_folds``);
    ``num_folds`` 1 means a single subject-exclusive train/test split (``test_fraction``)."""

    data: str = ""
    out: str = "runs/hiva"
    text_bank: str | None = None  # embed stage folder (needed by model.text_mode "corpus")
    text_encoder: str | None = None  # for text_mode "names": encoder spec (None → embed default)
    model: ModelConfig = field(default_factory=ModelConfig)
    aus: str | tuple[int, ...] | None = None  # None → the AUs of the manifest (∩ model aus)
    fold_scheme: str = "auto"  # auto: the manifest's fold column, else bp4d/disfa, else kfold
    num_folds: int = 3
    folds: tuple[int, ...] = ()
    test_fraction: float = 0.25  # only for num_folds == 1
    val_fraction: float = 0.15  # of TRAINING subjects, to pick the epoch
    label_fraction: float = 1.0  # labelled share of the training set (limited-label runs)
    label_by: str = "subject"  # subject | segment: how that share is drawn (never random frames)
    # A label budget that counts every labelled subject, validation included: N subjects of the
    # training pool are labelled (seeded), label_val_subjects of them (-1: N // 4) pick the epoch
    # and the tuned thresholds, the rest train; the pool's other subjects are not used. With no
    # validation subject the last epoch is tested at threshold 0.5. 0 = off (label_fraction).
    label_subjects: int = 0
    label_val_subjects: int = -1
    schedule: str = "epochs"  # epochs over the labelled share | steps: as many as the full set
    # Unseen AUs: their labels are withheld from training and from picking the epoch, so they are
    # detected from their descriptions alone; the test fold still scores them.
    zero_shot_aus: tuple[int, ...] = ()
    fold_seed: int = 0
    seed: int = 0
    epochs: int = 20
    max_steps_per_epoch: int | None = None  # cap for smoke tests and quick demos
    batch_size: int = 32  # per process
    eval_batch_size: int | None = None
    grad_accum: int = 1
    lr: float = 1e-4
    backbone_lr_mult: float = 1.0  # lr of the pretrained backbone = lr × this
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.01
    grad_clip: float | None = 1.0
    text_per_au: int = 8  # M descriptions sampled per AU per training step
    eval_text_per_au: int | None = 32  # fixed seeded subset at evaluation (None = all)
    resize: int | None = None  # None → input_size × 8/7 (256 for 224)
    jitter: float = 0.3
    flip: bool = True
    # Heads-only training (model.freeze_backbone): the frozen backbone's maps come from a
    # content-addressed cache (hiva.train.feature_cache) in the folder ``feature_cache`` (None →
    # hiva's cache folder /features: $HIVA_CACHE, else $XDG_CACHE_HOME/hiva or ~/.cache/hiva),
    # stored as ``feature_dtype`` (float16 | float32). Each training frame draws its view per
    # epoch among ``feature_views``: 0 the eval crop, 1 its flip (with flip), more: seeded
    # crops of the train transform (no colour jitter: ``jitter`` is not used). Validation and
    # test read view 0.
    feature_views: int = 2
    feature_cache: str | None = None
    feature_dtype: str = "float16"
    num_workers: int = 2
    amp: str = "auto"  # auto: bf16/fp16 on CUDA, bf16 on CPUs with native bf16, else off
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    deterministic: bool = True
    tune_thresholds: bool = True  # per-AU thresholds on validation, reported separately
    select_metric: str = "mean_f1"  # validation metric that picks the epoch
    progress: bool = True
    tensorboard: bool = True
    plots: bool = True
    resume: str | None = None  # "latest" → continue every unfinished fold in ``out``
    # Start each fold from another run's weights of the same fold (a run folder: its
    # fold{k}/best.safetensors) or from one weights file: the tensors both models have, with the
    # same shapes (ME-GraphAU's stage 2 starts from its stage 1 this way). In a sweep,
    # ``arm:NAME`` is that arm's run of the same seed and label fraction.
    init_from: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.folds, int):
            set_(self, "folds", (self.folds,))
        if isinstance(self.folds, str):
            set_(self, "folds", tuple(int(x) for x in self.folds.split(",") if x.strip()))
        if isinstance(self.zero_shot_aus, (str, int)):
            z = str(self.zero_shot_aus).strip()
            set_(self, "zero_shot_aus", parse_aus(z) if z else ())
        set_(self, "zero_shot_aus", tuple(int(a) for a in self.zero_shot_aus or ()))
        if not isinstance(self.model, ModelConfig):
            section = dict(self.model or {})
            if "aus" in section:
                raise HivaError("put the AU list in the top-level `aus` key, not under `model`")
            try:
                set_(self, "model", ModelConfig(**coerce_fields(ModelConfig, section,
                                                                "model config")))
            except TypeError as e:
                raise HivaError(f"bad model config: {e}; see hiva.model.ModelConfig") from None
        checks = [
            (self.num_folds >= 1, f"num_folds must be ≥ 1, got {self.num_folds}"),
            (all(1 <= f <= self.num_folds for f in self.folds) or self.num_folds == 1,
             f"folds {self.folds} must lie in 1..{self.num_folds}"),
            (0.0 < self.test_fraction < 1.0, "test_fraction must be in (0, 1)"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (0.0 < self.label_fraction <= 1.0, "label_fraction must be in (0, 1]"),
            (self.label_subjects >= 0, f"label_subjects must be ≥ 0 (0 = off), got "
             f"{self.label_subjects}"),
            (self.label_subjects == 0 or self.label_fraction == 1.0,
             "label_subjects and label_fraction are two ways to set the labels: keep "
             "label_fraction 1.0 with a label_subjects budget"),
            (self.label_val_subjects >= -1 and (self.label_subjects == 0 or
                                                self.label_val_subjects < self.label_subjects),
             f"label_val_subjects must be -1 (auto: label_subjects // 4) or 0..label_subjects-1 "
             f"(at least one subject trains), got {self.label_val_subjects}"),
            (self.label_by in LABEL_UNITS,
             f"label_by must be one of {', '.join(LABEL_UNITS)}, got {self.label_by!r}"),
            (self.schedule in SCHEDULES,
             f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (self.epochs >= 1, "epochs must be ≥ 1"),
            count_rule("batch_size", self.batch_size),
            count_rule("grad_accum", self.grad_accum),
            count_rule("eval_batch_size", self.eval_batch_size, none="batch_size"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must be in [0, 1)"),
            (self.text_per_au >= 1, "text_per_au must be ≥ 1"),
            (self.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}"),
            (self.fold_scheme in FOLD_SCHEMES,
             f"fold_scheme must be one of {', '.join(FOLD_SCHEMES)}"),
            (self.select_metric in ("mean_f1", "loss"), "select_metric must be mean_f1 or loss"),
            (self.resume in (None, "latest"), "resume must be 'latest' (or left out)"),
            (self.num_workers >= 0, "num_workers must be ≥ 0"),
            (self.feature_views >= 1, f"feature_views must be ≥ 1, got {self.feature_views}"),
            (self.feature_dtype in FEATURE_DTYPES,
             f"feature_dtype must be one of {', '.join(FEATURE_DTYPES)}, got "
             f"{self.feature_dtype!r}"),
        ]
        check_config("train", checks)

    # The model section's AU list is the data's, chosen per run: not part of the saved config.
    _unsaved: ClassVar[dict[str, tuple[str, ...]]] = {"model": ("aus",)}

    def model_config(self, aus) -> ModelConfig:
        """The ``ModelConfig`` a run on these AUs builds (``model`` with ``aus`` filled in)."""
        return replace(self.model, aus=tuple(aus))

    @property
    def resize_to(self) -> int:
        return self.resize or round(self.model.input_size * 8 / 7)
