"""``hiva sweep``: a grid of ``hiva train`` runs (arms × label fractions × seeds), on one machine or
a Slurm cluster, that can be killed and rerun at any point.

The sweep file (YAML; paths in ``base`` and arm files are relative to the sweep file, data paths
in the configs relative to where ``hiva sweep`` runs, like ``hiva train``'s)::

    base: ../demo.yaml              # a TrainConfig YAML (optional)
    set: {data: ..., aus: bp4d}     # TrainConfig keys applied to every run (`model` merges)
    arms:                           # name -> a YAML overlay path, a mapping of TrainConfig keys,
      no_graph: ../ablations/no_graph.yaml     # or nothing (the base as it is); a mapping may
      full: {config: ../ablations/full.yaml,   # also name `config:` (a file applied first) and
             label_fractions: [1.0, 0.1]}      # its own `label_fractions`
    seeds: [0, 1, 2]                # TrainConfig.seed (default [0]); fold_seed stays the base's
    label_fractions: [1.0]          # default [1.0]
    folds: [1]                      # optional: TrainConfig.folds of every run
    primary: "no_graph - full"      # optional: the contrast `hiva report` prints first (A - B)
    slurm: {partition: gpu, time: 240, gpus_per_node: 1, cpus_per_task: 8, mem_gb: 64,
            array_parallelism: 8, account: ..., qos: ..., constraint: ..., setup: [...]}

A run's config: ``progress: false`` (a log file is no terminal), then base, ``set``, the arm,
the sweep's ``folds``, the command line's ``--set``, then the plan's ``seed``, ``label_fraction``,
``out: ROOT/RUN-ID`` and ``resume: latest`` (which ``set``, arms and ``--set`` may not set).

``ROOT/sweep.json`` (read by ``hiva report ROOT``)::

    {"version": 1, "runs": [{"id": "full/seed0", "arm": "full", "seed": 0,
                             "label_fraction": 1.0, "dir": "full/seed0", "config_hash": ...}],
     "primary": "A - B" (only when declared), "sweep": {...the resolved sweep...},
     "hiva_version": "..."}

Run ids/dirs are ``{arm}/seed{seed}``, plus ``/labels{pct}`` when the label fraction is not 1
(``labels10`` for 0.1). Each run dir is an ordinary ``hiva train --out`` folder with its resolved
config (``sweep_run.yaml``), its log (``train.log``, appended per attempt) and ``.sweep.lock``,
held by whichever process trains the run (so two sweeps never train one run at once). Run ``i``
of the plan belongs to shard ``i mod N``.

Launchers (``hiva.train.launch`` carries the plan out through the shared launchers of
``hiva.jobs``): ``local`` runs one ``python -m hiva.cli train --config DIR/sweep_run.yaml``
subprocess at a time (it dies with the sweep); ``slurm`` submits the shard's runs as a submitit
job array (each job runs the same subprocess, under ``torchrun`` when ``gpus_per_node`` > 1) and
waits. ``HIVA_SUBMITIT_CLUSTER=local`` runs that path through submitit's local executor (tests,
trials on a workstation). The ``slurm`` section's checks are in hiva.jobs.settings, group names
and the primary contrast in hiva.train.contrast. Imports neither torch nor numpy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiva import __version__
from hiva.config import _merge, coerce_fields, config_dict, parse_sets, read_mapping
from hiva.errors import HivaError
from hiva.jobs.settings import slurm_settings
from hiva.runs import SWEEP_PLAN
from hiva.train.config import TrainConfig
from hiva.train.contrast import check_primary

SWEEP_KEYS = ("base", "set", "arms", "seeds", "label_fractions", "folds", "slurm", "primary")
PLAN_KEYS = ("seed", "label_fraction", "out", "resume")  # the plan sets these in every run
# Keys that change how a run is executed, not what it computes: outside the plan's identity.
FREE_KEYS = ("out", "resume", "progress", "num_workers", "device", "tensorboard", "plots",
             "eval_batch_size")
ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Run:
    index: int  # position in the plan; shard = index mod N
    id: str
    arm: str
    seed: int
    label_fraction: float
    config: Any  # its TrainConfig (out = ROOT/id, resume latest)

    @property
    def dir(self) -> str:
        return self.id

    def entry(self) -> dict:
        return {"id": self.id, "arm": self.arm, "seed": self.seed,
                "label_fraction": self.label_fraction, "dir": self.dir,
                "config_hash": identity_hash(self.config)}


def identity_hash(cfg) -> str:
    """What a run computes, as a short hash: the config's keys (dotted inside ``model``) that
    differ from TrainConfig's defaults, less ``FREE_KEYS``; so a hiva update that adds a config
    key (with a default) leaves an existing sweep's plan the same."""
    new, default = _flat(config_dict(cfg)), _flat(config_dict(TrainConfig()))
    ident = {k: v for k, v in new.items()
             if k not in FREE_KEYS and (k not in default or default[k] != v)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _flat(d: dict, pre: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{pre}{k}.") if isinstance(v, dict) else {f"{pre}{k}": v})
    return out


@dataclass
class Sweep:
    path: Path
    root: Path
    runs: list[Run]
    resolved: dict  # the sweep as read: base, set, arms (overlays), seeds, fractions, folds
    slurm: dict = field(default_factory=dict)
    primary: str | list | None = None  # the contrast(s) "A - B" hiva report prints first

    def plan(self) -> dict:
        return {"version": 1, "runs": [r.entry() for r in self.runs],
                **({"primary": self.primary} if self.primary else {}), "sweep": self.resolved,
                "hiva_version": __version__}


# --------------------------------------------------------------------------- reading
def run_id(arm: str, seed: int, label_fraction: float) -> str:
    rid = f"{arm}/seed{seed}"
    if label_fraction != 1.0:
        rid += f"/labels{round(label_fraction * 100, 6):g}"
    return rid


def _where(path: Path) -> str:
    return f"sweep file {path}"


def _read_mapping(p: Path, what: str, sweep_path: Path) -> dict:
    return read_mapping(p, what, f"{_where(sweep_path)}: {what} {p} does not exist; fix the "
                        "path (it is relative to the sweep file)")


def _rel(sweep_path: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise HivaError(f"{_where(sweep_path)}: {key} must be a YAML file path; fix the sweep "
                        "file")
    p = Path(value).expanduser()
    return p if p.is_absolute() else sweep_path.parent / p


def _int_list(v: Any, key: str, where: str, default: list) -> list[int]:
    if v is None:
        return list(default)
    items = v if isinstance(v, list) else [v]
    out = []
    for x in items:
        if isinstance(x, str) and x.strip().lstrip("-").isdigit():
            x = int(x)
        if not isinstance(x, int) or isinstance(x, bool) or x < 0:
            raise HivaError(f"{where}: {key} must be a list of whole numbers ≥ 0, got {x!r}; "
                            f"fix the sweep file (e.g. {key}: [0, 1, 2])")
        out.append(x)
    if not out:
        raise HivaError(f"{where}: {key} is empty; list at least one (e.g. {key}: [0])")
    if len(set(out)) != len(out):
        raise HivaError(f"{where}: {key} {out} repeats a value; list each once")
    return out


def _fractions(v: Any, key: str, where: str) -> list[float]:
    if v is None:
        return [1.0]
    items = v if isinstance(v, list) else [v]
    out = []
    for x in items:
        try:
            if isinstance(x, bool):
                raise ValueError
            f = float(x)
        except (TypeError, ValueError):
            raise HivaError(f"{where}: {key} must be a list of numbers in (0, 1], got {x!r}; "
                            f"fix the sweep file (e.g. {key}: [1.0, 0.1])") from None
        if not 0.0 < f <= 1.0:
            raise HivaError(f"{where}: {key} value {x!r} is not in (0, 1]; fix the sweep file "
                            f"(e.g. {key}: [1.0, 0.1])")
        out.append(f)
    if not out:
        raise HivaError(f"{where}: {key} is empty; list at least one (e.g. {key}: [1.0])")
    if len({run_id("a", 0, f) for f in out}) != len(out):
        raise HivaError(f"{where}: {key} {out} repeats a value; list each once")
    return out


def _no_plan_keys(layer: dict, what: str, where: str) -> None:
    bad = [k for k in PLAN_KEYS if k in layer]
    if bad:
        hint = {"seed": "list it under seeds", "label_fraction": "list it under label_fractions",
                "out": "the sweep sets it (ROOT/RUN-ID)", "resume": "the sweep always resumes"}
        raise HivaError(f"{where}: {what} sets {', '.join(bad)}, which the sweep plan sets per "
                        f"run; remove it ({'; '.join(hint[k] for k in bad)})")


def _check_layer(layer: dict, what: str, where: str) -> None:
    """Unknown TrainConfig keys / unreadable values of one layer, named with where they are."""
    _no_plan_keys(layer, what, where)
    coerce_fields(TrainConfig, layer, f"{what} ({where})")


def load_sweep(path: str | Path, root: str | Path,
               sets: list[str] | tuple[str, ...] | None = None) -> Sweep:
    """Read and validate the sweep file and build every run's TrainConfig (its own checks run);
    nothing is written. Raises a one-line ``HivaError`` on the first problem."""
    path = Path(path)
    root = Path(root)
    where = _where(path)
    if not path.is_file():
        raise HivaError(f"sweep file {path} does not exist; pass an existing sweep YAML")
    doc = _read_mapping(path, "sweep file", path)
    unknown = sorted(map(str, set(doc) - set(SWEEP_KEYS)))
    if unknown:
        raise HivaError(f"unknown key(s) in {where}: {', '.join(unknown)}; valid keys are: "
                        f"{', '.join(SWEEP_KEYS)}")

    base: dict = {}
    if doc.get("base") is not None:
        base = _read_mapping(_rel(path, doc["base"], "base"), "base config", path)
        _no_plan_keys({k: v for k, v in base.items() if k in ("seed", "label_fraction")},
                      f"base config {doc['base']}", where)
        coerce_fields(TrainConfig, base, f"base config {doc['base']} ({where})")
    common = doc.get("set") or {}
    if not isinstance(common, dict):
        raise HivaError(f"{where}: set must be a mapping of TrainConfig keys; fix the sweep file")
    _check_layer(common, "set", where)
    cli = parse_sets(sets)
    _check_layer(cli, "--set", "the command line")

    arms_doc = doc.get("arms")
    if not isinstance(arms_doc, dict) or not arms_doc:
        raise HivaError(f"{where}: arms must name at least one arm (name: overlay YAML path or "
                        "mapping); e.g. arms: {full: ../ablations/full.yaml}")
    seeds = _int_list(doc.get("seeds"), "seeds", where, [0])
    fractions = _fractions(doc.get("label_fractions"), "label_fractions", where)
    folds = None
    if doc.get("folds") is not None:
        f = doc["folds"]
        folds = _int_list(f.split(",") if isinstance(f, str) else f, "folds", where, [])
    slurm = slurm_settings(doc.get("slurm"), where)

    arms: dict[str, dict] = {}
    arm_fractions: dict[str, list[float]] = {}
    for name, spec in arms_doc.items():
        if not isinstance(name, str) or not ARM_NAME.fullmatch(name) or name == SWEEP_PLAN:
            raise HivaError(f"{where}: arm name {name!r} is not a safe folder name; use letters, "
                            "digits, '.', '_' and '-' (starting with a letter or digit, ≤ 64), "
                            "quoted if YAML reads it as a number")
        aw = f"arm {name} of {where}"
        if spec is None:
            overlay: dict = {}
        elif isinstance(spec, str):
            overlay = _read_mapping(_rel(path, spec, f"arms.{name}"), f"arm {name} file", path)
        elif isinstance(spec, dict):
            spec = dict(spec)
            overlay = {}
            if "config" in spec:
                overlay = _read_mapping(_rel(path, spec.pop("config"), f"arms.{name}.config"),
                                        f"arm {name} file", path)
            if "label_fractions" in spec:
                arm_fractions[name] = _fractions(spec.pop("label_fractions"),
                                                 f"arms.{name}.label_fractions", where)
            overlay = _merge(overlay, spec)
        else:
            raise HivaError(f"{where}: arm {name} must be an overlay YAML path or a mapping of "
                            f"TrainConfig keys, got {spec!r}; fix the sweep file")
        _check_layer(overlay, "overlay", aw)
        arms[name] = overlay
    primary = check_primary(doc.get("primary"), arms, fractions, arm_fractions, where)

    runs: list[Run] = []
    for name, overlay in arms.items():
        for lf in arm_fractions.get(name, fractions):
            for seed in seeds:
                rid = run_id(name, seed, lf)
                data = _merge({"progress": False}, copy.deepcopy(base))
                for layer in (common, overlay, {} if folds is None else {"folds": folds}, cli):
                    _merge(data, copy.deepcopy(layer))
                data.update(seed=seed, label_fraction=lf, out=str(root / rid), resume="latest")
                src = data.get("init_from")
                if isinstance(src, str) and src.startswith("arm:"):
                    # another arm's run of this seed and fraction, planned (so run) before it
                    other = src.removeprefix("arm:")
                    before = list(arms)[:list(arms).index(name)]
                    if other not in before:
                        raise HivaError(f"{where}: arm {name}: init_from {src} must name an arm "
                                        f"listed before it (one of: {', '.join(before) or 'none'})")
                    if lf not in arm_fractions.get(other, fractions):
                        raise HivaError(f"{where}: arm {name}: init_from {src} has no run at "
                                        f"label fraction {lf}; give both arms the same fractions")
                    data["init_from"] = str(root / run_id(other, seed, lf))
                try:
                    cfg = TrainConfig(**coerce_fields(TrainConfig, data, f"config of run {rid}"))
                except TypeError as e:
                    raise HivaError(f"{where}: run {rid}: bad config ({e}); fix the sweep "
                                    "file") from None
                except HivaError as e:
                    raise HivaError(f"{where}: arm {name} (run {rid}): {e}") from None
                runs.append(Run(len(runs), rid, name, seed, lf, cfg))
    resolved = {"base": doc.get("base"), "set": common, "arms": arms,
                "arm_label_fractions": arm_fractions, "seeds": seeds,
                "label_fractions": fractions, "folds": folds, "cli_set": list(sets or ())}
    return Sweep(path, root, runs, json.loads(json.dumps(resolved, default=str)), slurm, primary)


# --------------------------------------------------------------------------- the root folder
def shard_of(index: int, num_shards: int) -> int:
    return index % num_shards


def shard_runs(runs: list[Run], num_shards: int, shard_index: int) -> list[Run]:
    return [r for r in runs if shard_of(r.index, num_shards) == shard_index]


def check_shards(num_shards: int, shard_index: int) -> None:
    if num_shards < 1:
        raise HivaError(f"--num-shards {num_shards}: pass 1 or more")
    if not 0 <= shard_index < num_shards:
        raise HivaError(f"--shard-index {shard_index}: pass 0..{num_shards - 1} (one per shard "
                        f"of --num-shards {num_shards})")
