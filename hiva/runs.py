"""The folders hiva writes and reads back: a ``hiva train`` run and a ``hiva export``. This module
is the one place that spells their file names; every reader and writer goes through it.

A run folder: ``config.yaml`` (its TrainConfig), ``metrics.json`` + ``metrics.txt`` (the summary
over folds, written last: the run is finished), and per fold ``fold{k}/``: ``last.safetensors`` +
``last.state.pt`` (resume), ``best.safetensors`` (the epoch picked on validation),
``metrics.json`` (test metrics, thresholds tuned on validation), ``history.csv``, ``steps.csv``,
``test_predictions.parquet``, ``curves.png``, ``per_au_f1.png``, ``tb/``; ``hiva evaluate`` adds
``evaluate.json`` and ``evaluate_{weights}_predictions.parquet``. Inside a sweep, each run folder
also holds ``sweep_run.yaml``, ``train.log`` and ``.sweep.lock``, and the sweep folder its plan
``sweep.json``.

An export folder (``hiva export``, ``hiva import-checkpoint``): ``config.json`` (of format
``EXPORT_FORMAT``), ``model.safetensors``, ``aus.txt``, ``train_config.yaml``, ``README.md``,
``text_bank/``. A Hub model id ``OWNER/NAME[@REVISION]`` names an export pushed with
``hiva export --push``: its snapshot in the local Hub cache is the export folder
(``resolve_checkpoint``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hiva.errors import HivaError
from hiva.hub import resolve_model
from hiva.runtime import check_claim, claim_dir, entries, release_dir, write_text_atomic

# ------------------------------------------------------------------ a run folder
RUN_CONFIG = "config.yaml"
METRICS = "metrics.json"
METRICS_TABLE = "metrics.txt"
ZERO_SHOT = "zero_shot.json"
WEIGHTS = ("best", "last")
LAST_STATE = "last.state.pt"
HISTORY = "history.csv"
STEPS = "steps.csv"
PREDICTIONS = "test_predictions.parquet"
EVALUATE_METRICS = "evaluate{tag}.json"  # tag: "" in a run's fold folder, "_fold{k}" elsewhere
EVALUATE_PREDICTIONS = "evaluate{tag}_{weights}_predictions.parquet"
EVALUATED = EVALUATE_PREDICTIONS.format(tag="", weights="best")  # `hiva evaluate --fold K`'s
CURVES = "curves.png"
PER_AU_PLOT = "per_au_f1.png"
TENSORBOARD = "tb"
FAITHFULNESS = "faithfulness.json"
# a sweep: its plan in the sweep folder; per run folder, the run's config, log and lock
SWEEP_PLAN = "sweep.json"
SWEEP_RUN_CONFIG = "sweep_run.yaml"
SWEEP_RUN_LOG = "train.log"
SWEEP_LOCK = ".sweep.lock"

# ------------------------------------------------------------------ an export folder
EXPORT_FORMAT = "hiva-export"
EXPORT_VERSION = 1
EXPORT_INFO = "config.json"
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_CONFIG = "train_config.yaml"
EXPORT_AUS = "aus.txt"
EXPORT_BANK = "text_bank"
EXPORT_CARD = "README.md"
EXPORT_LICENCE = "LICENSE.md"  # the training data's terms, for a card whose licence is "other"
# The files of an export: what a Hub snapshot of one downloads, so a repo holding more (runs,
# logs) costs only these.
EXPORT_FILES = [EXPORT_INFO, EXPORT_WEIGHTS, EXPORT_AUS, EXPORT_CONFIG, EXPORT_CARD,
                EXPORT_LICENCE, f"{EXPORT_BANK}/*"]


EXPORT_WRITERS = "`hiva export` or `hiva import-checkpoint`"


def export_dir(to: Path, flag: str, claim: bool = False) -> Path:
    """The folder an export is written to, checked before any work (``claim``: made and marked
    before its first file, ``write_export`` unmarks it after its last): new, empty, an earlier
    export, or one a killed export left half written (``hiva.runtime.claim_dir``)."""
    rule = (to, flag, EXPORT_WRITERS, is_export, entries)
    return claim_dir(*rule) if claim else check_claim(*rule)


def write_export(to: Path, info: dict, train_config: dict, outputs: list[tuple[str, str]],
                 card: str, licence: str | None) -> dict:
    """An export folder's files beside its weights (written by the caller as ``EXPORT_WEIGHTS``):
    ``train_config.yaml``, ``aus.txt`` (output column, name), the model card, the licence (or
    none: one an earlier export left is removed) and, last, ``config.json`` (``info`` with the
    format stamped): the file that makes the folder an export. Returns that info."""
    import yaml

    to = Path(to)
    info = {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION, **info}
    (to / EXPORT_CONFIG).write_text(yaml.safe_dump(train_config, sort_keys=False))
    (to / EXPORT_AUS).write_text("".join(f"{c}\t{n}\n" for c, n in outputs))
    (to / EXPORT_CARD).write_text(card)
    if licence is not None:
        (to / EXPORT_LICENCE).write_text(f"# Terms of use of these weights\n\n{licence}\n")
    else:
        (to / EXPORT_LICENCE).unlink(missing_ok=True)
    write_text_atomic(to / EXPORT_INFO, json.dumps(info, indent=1))
    release_dir(to)
    return info


def weights_rule(weights: str, name: str = "--weights") -> tuple[bool, str]:
    """``(holds, what must hold)`` for a choice of a fold's weights (``WEIGHTS``)."""
    return weights in WEIGHTS, f"{name} {weights!r}: use best or last"


def fold_dir(run: Path, k: int) -> Path:
    return Path(run) / f"fold{k}"


def fold_label(k: int) -> str:
    """A fold's name in tables and folders: ``fold{k}``."""
    return f"fold{k}"


def weights_file(fold: Path, which: str = "best") -> Path:
    """A fold folder's ``best`` or ``last`` weights."""
    return Path(fold) / f"{which}.safetensors"


def evaluated_files(dest: Path, fold: int, weights: str, export: bool) -> tuple[Path, Path]:
    """Where ``hiva evaluate`` writes its metrics and predictions: a run's fold folder, or an
    export folder (or ``--out``) with the scored fold in the names, one pair per fold."""
    tag = f"_{fold_label(fold)}" if export else ""
    return (dest / EVALUATE_METRICS.format(tag=tag),
            dest / EVALUATE_PREDICTIONS.format(tag=tag, weights=weights))


def is_run(path: Path) -> bool:
    return (Path(path) / RUN_CONFIG).is_file()


def is_export(path: Path) -> bool:
    f = Path(path) / EXPORT_INFO
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("format") == EXPORT_FORMAT
    except (ValueError, AttributeError):
        return False


def is_finished(folder: Path) -> bool:
    """A run (or one fold of it) is finished once its ``metrics.json`` is written: it is the
    last file written, atomically."""
    return (Path(folder) / METRICS).is_file()


def has_begun(run: Path) -> bool:
    """Whether a run folder holds any work: its config or a fold folder."""
    return is_run(run) or any(Path(run).glob("fold*"))


def has_trained(run: Path) -> bool:
    """Whether any fold of the run has saved its last weights (an epoch finished)."""
    return any(Path(run).glob(f"fold*/{WEIGHTS[1]}.safetensors"))


def write_metrics(folder: Path, result: dict, table: str | None = None) -> None:
    """``metrics.json`` (atomically: a reader never sees half of it) and, for a run's summary,
    the printed table as ``metrics.txt`` (written first: ``metrics.json`` says finished)."""
    if table is not None:
        (Path(folder) / METRICS_TABLE).write_text(table + "\n")
    write_text_atomic(Path(folder) / METRICS, json.dumps(result, indent=2))


def fold_metrics(fold_dir: Path) -> dict:
    """A trained fold's ``metrics.json`` (test F1, tuned thresholds, localisation); {} when the
    fold has none or it does not parse (a fold still training)."""
    try:
        return json.loads((Path(fold_dir) / METRICS).read_text())
    except (OSError, ValueError):
        return {}


def read_metrics(folder: Path) -> dict:
    """A finished run's (or fold's) ``metrics.json``; a missing or unreadable one is one line
    naming the fix."""
    p = Path(folder) / METRICS
    if not p.is_file():
        raise HivaError(f"{p} does not exist: train the run first (hiva train --out {folder})")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise HivaError(f"{p} does not parse ({e}); it was cut or edited: retrain the run "
                        "(hiva train --resume latest rewrites it)") from None
    if not isinstance(data, dict):
        raise HivaError(f"{p} is not a metrics file of hiva train; retrain the run")
    return data


def tuned_thresholds(fold_dir: Path, n: int) -> list[float] | None:
    """Per-AU thresholds the trainer tuned on validation (``metrics.json`` → ``test_tuned``)."""
    th = fold_metrics(fold_dir).get("test_tuned", {}).get("thresholds")
    if not th or len(th) != n:
        return None
    return [float(x) for x in th]


def run_folds(run_dir: Path, weights: str = "best") -> list[int]:
    out = []
    for d in Path(run_dir).glob("fold*"):
        tail = d.name[4:]
        if tail.isdigit() and weights_file(d, weights).is_file():
            out.append(int(tail))
    return sorted(out)


def resolve_checkpoint(checkpoint: str | Path, revision: str | None = None) -> Path:
    """The folder of ``checkpoint``: a local path as it is, or a Hub model id
    ``OWNER/NAME[@REVISION]`` as its export files in the local Hub cache (``hiva.hub``); a Hub
    repo that is not a hiva export is one line."""
    src = Path(resolve_model(checkpoint, revision, what="checkpoint",
                             allow_patterns=EXPORT_FILES))
    if src != Path(checkpoint) and not is_export(src):
        raise HivaError(f"Hub model {checkpoint} is not a hiva export (no {EXPORT_INFO} of format "
                        f"{EXPORT_FORMAT}); pass the id of a repo written by `hiva export --push`, "
                        "or a local run or export folder")
    return src


@dataclass
class Checkpoint:
    """One model's files in a run or export folder: its TrainConfig file, its weights, the fold
    they were trained on (an export's recorded fold; None when it has none), the export's
    ``config.json`` ({} for a run) and the text bank an export carries (None otherwise)."""

    source: Path
    export: bool
    config_file: Path
    weights: Path
    fold: int | None
    info: dict = field(default_factory=dict)
    bank: Path | None = None

    @property
    def fold_folder(self) -> Path | None:
        """The run's fold folder (metrics, plots); None for an export."""
        return None if self.export else self.weights.parent


def open_checkpoint(src: Path, fold: int | None = None, weights: str = "best") -> Checkpoint:
    """The files of a local run folder (fold ``fold`` or its first trained one; ``best`` or
    ``last`` weights) or export folder; what is missing is one line naming the fix."""
    src = Path(src)
    if not src.exists():
        raise HivaError(f"checkpoint {src} does not exist; pass a `hiva train` --out folder, a "
                        "`hiva export` folder or the Hub id of an export (OWNER/NAME[@REVISION])")
    ok, rule = weights_rule(weights)
    if not ok:
        raise HivaError(rule)
    if is_export(src):
        info = json.loads((src / EXPORT_INFO).read_text())
        if int(info.get("format_version", 0)) > EXPORT_VERSION:
            raise HivaError(f"{src} was exported by a newer hiva (format "
                            f"{info.get('format_version')}); upgrade hiva")
        bank = src / EXPORT_BANK
        ck = Checkpoint(src, True, src / EXPORT_CONFIG, src / EXPORT_WEIGHTS, info.get("fold"),
                        info, bank if bank.exists() else None)
        if not ck.weights.is_file() or not ck.config_file.is_file():
            missing = ck.weights if not ck.weights.is_file() else ck.config_file
            raise HivaError(f"{missing} is missing; re-export the run (hiva export RUN --to {src})")
        return ck
    if not is_run(src):
        raise HivaError(f"{src} is neither a `hiva train` run folder ({RUN_CONFIG}) nor a "
                        f"`hiva export` folder ({EXPORT_INFO}); pass the --out of either")
    folds = run_folds(src, weights)
    if not folds:
        raise HivaError(f"{src} has no fold*/{weights}.safetensors; train it first (hiva "
                        "train) or pass --weights last for an unfinished run")
    k = folds[0] if fold is None else fold
    if k not in folds:
        raise HivaError(f"{src} has no trained fold {k}; its folds are "
                        f"{', '.join(map(str, folds))}: pass one of those to --fold")
    return Checkpoint(src, False, src / RUN_CONFIG, weights_file(fold_dir(src, k), weights), k)


def run_path(name: str, out: str | None, folder: Path) -> Path:
    """Where a relative path named in the config of an output ``folder`` (a run's text bank, a
    text bank's corpus) lies, the first that exists of: the folder the command ran in
    (``folder`` less its relative ``out``, as the config recorded it: so a run opened from
    another folder, or a project moved whole, still finds its own files), here, and ``folder``
    itself (exports name their files relative to themselves); ``name`` as given when none
    exists."""
    p = Path(name)
    if p.is_absolute():
        return p
    cands = []
    o = Path(out) if out else None
    if o is not None and not o.is_absolute() and ".." not in o.parts:
        parts, n = Path(folder).resolve().parts, len(o.parts)
        if n < len(parts) and parts[-n:] == o.parts:
            cands.append(Path(*parts[:-n]) / p)
    cands += [p, Path(folder) / p]
    return next((c for c in cands if c.exists()), p)
