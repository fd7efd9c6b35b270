"""The folders hiva writes and reads back: a ``hiva train`` run and a ``hiva export``.

A run folder: ``config.yaml`` (its TrainConfig), ``fold{k}/best.safetensors`` and
``last.safetensors`` (weights), ``fold{k}/metrics.json`` (test metrics, thresholds tuned on
validation). An export folder (``hiva export``, ``hiva import-checkpoint``): ``config.json`` (of
format ``EXPORT_FORMAT``), ``model.safetensors``, ``train_config.yaml``, ``text_bank/``. A Hub
model id ``OWNER/NAME[@REVISION]`` names an export pushed with ``hiva export --push``: its
snapshot in the local Hub cache is the export folder (``resolve_checkpoint``).
"""

from __future__ import annotations

import json
from pathlib import Path

from hiva.errors import HivaError
from hiva.hub import resolve_model

EXPORT_FORMAT = "hiva-export"
EXPORT_VERSION = 1
# The files of an export (``hiva export``, ``hiva import-checkpoint``): what a Hub snapshot of one
# downloads, so a repo holding more (runs, logs) costs only these.
EXPORT_FILES = ["config.json", "model.safetensors", "aus.txt", "train_config.yaml", "README.md",
                "LICENSE.md", "text_bank/*"]


def is_export(path: Path) -> bool:
    f = path / "config.json"
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("format") == EXPORT_FORMAT
    except (ValueError, AttributeError):
        return False


def resolve_checkpoint(checkpoint: str | Path, revision: str | None = None) -> Path:
    """The folder of ``checkpoint``: a local path as it is, or a Hub model id
    ``OWNER/NAME[@REVISION]`` as its export files in the local Hub cache (``hiva.hub``); a Hub
    repo that is not a hiva export is one line."""
    src = Path(resolve_model(checkpoint, revision, what="checkpoint",
                             allow_patterns=EXPORT_FILES))
    if src != Path(checkpoint) and not is_export(src):
        raise HivaError(f"Hub model {checkpoint} is not a hiva export (no config.json of format "
                        f"{EXPORT_FORMAT}); pass the id of a repo written by `hiva export --push`, "
                        "or a local run or export folder")
    return src


# A trained fold's two weight files, ``fold{k}/{best,last}.safetensors``: the one to read.
WEIGHTS = ("best", "last")


def weights_rule(weights: str, name: str = "--weights") -> tuple[bool, str]:
    """``(holds, what must hold)`` for a choice of a fold's weights (``WEIGHTS``)."""
    return weights in WEIGHTS, f"{name} {weights!r}: use best or last"


def run_folds(run_dir: Path, weights: str = "best") -> list[int]:
    out = []
    for d in run_dir.glob("fold*"):
        tail = d.name[4:]
        if tail.isdigit() and (d / f"{weights}.safetensors").is_file():
            out.append(int(tail))
    return sorted(out)


def fold_metrics(fold_dir: Path) -> dict:
    """A trained fold's ``metrics.json`` (test F1, tuned thresholds, localisation); {} when the
    fold has none or it does not parse (a fold still training)."""
    try:
        return json.loads((Path(fold_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def tuned_thresholds(fold_dir: Path, n: int) -> list[float] | None:
    """Per-AU thresholds the trainer tuned on validation (``metrics.json`` → ``test_tuned``)."""
    th = fold_metrics(fold_dir).get("test_tuned", {}).get("thresholds")
    if not th or len(th) != n:
        return None
    return [float(x) for x in th]


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
