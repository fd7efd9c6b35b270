"""The ``slurm`` settings of a launch: the keys (a sweep file's ``slurm`` section, or ``--slurm
KEY=VALUE`` / ``--slurm FILE.yaml`` on the command line) and their checks, each failure a
one-line ``HivaError`` naming the fix."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hiva.config import read_mapping, yaml_value
from hiva.errors import HivaError

SLURM_KEYS = ("partition", "time", "gpus_per_node", "cpus_per_task", "mem_gb",
              "array_parallelism", "account", "qos", "constraint", "setup")


def minutes(v: Any, where: str, fix: str = "fix the sweep file") -> int:
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})", str(v).strip())
    if m:
        d, h, mi, s = (int(x or 0) for x in m.groups())
        total = math.ceil((((d * 24 + h) * 60 + mi) * 60 + s) / 60)
        if total > 0:
            return total
    if str(v).strip().isdigit() and int(str(v).strip()) > 0:
        return int(str(v).strip())
    raise HivaError(f"{where}: slurm.time {v!r} must be minutes or D-HH:MM:SS; {fix} "
                    "(e.g. time: 240)")


def slurm_settings(v: Any, where: str, fix: str = "fix the sweep file") -> dict:
    """The checked settings of ``v`` (a mapping of ``SLURM_KEYS``; None: none); ``where`` and
    ``fix`` name the source in messages."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise HivaError(f"{where}: slurm must be a mapping (partition, time, ...); {fix}")
    unknown = sorted(map(str, set(v) - set(SLURM_KEYS)))
    if unknown:
        raise HivaError(f"{where}: unknown key(s) in slurm: {', '.join(unknown)}; "
                        f"valid keys are: {', '.join(SLURM_KEYS)}")
    out: dict[str, Any] = {}
    for k, x in v.items():
        if x is None:
            continue
        if k == "time":
            out[k] = minutes(x, where, fix)
        elif k in ("gpus_per_node", "cpus_per_task", "array_parallelism"):
            low = 0 if k == "gpus_per_node" else 1
            if not isinstance(x, int) or isinstance(x, bool) or x < low:
                raise HivaError(f"{where}: slurm.{k} must be a whole number ≥ {low}, got {x!r}; "
                                f"{fix}")
            out[k] = x
        elif k == "mem_gb":
            if isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0:
                raise HivaError(f"{where}: slurm.mem_gb must be a number > 0, got {x!r}; {fix}")
            out[k] = x
        elif k == "setup":
            lines = x if isinstance(x, list) else [x]
            if not all(isinstance(s, str) for s in lines):
                raise HivaError(f"{where}: slurm.setup must be a list of shell lines; {fix}")
            out[k] = lines
        else:
            if not isinstance(x, str) or not x.strip():
                raise HivaError(f"{where}: slurm.{k} must be a text, got {x!r}; {fix}")
            out[k] = x
    return out


def slurm_from_items(items: list[str] | tuple[str, ...] | None, flag: str = "--slurm") -> dict:
    """The checked settings of repeated ``--slurm`` items: ``KEY=VALUE`` (the value read as
    YAML, like ``--set``'s) or a YAML file holding the keys, or a ``slurm:`` section (a sweep
    file); later items win."""
    raw: dict[str, Any] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if eq:
            if not key.strip():
                raise HivaError(f"{flag} {item!r}: write KEY=VALUE (e.g. {flag} time=240) or "
                                "name a YAML file of slurm keys")
            raw[key.strip()] = yaml_value(value)
            continue
        p = Path(item).expanduser()
        doc = read_mapping(p, f"{flag} file", f"{flag} {item}: no such file; pass KEY=VALUE "
                           f"(e.g. {flag} partition=gpu) or a YAML file of slurm keys")
        if "slurm" in doc:
            doc = doc["slurm"]
        if not isinstance(doc, (dict, type(None))):
            raise HivaError(f"{flag} file {p} must hold a mapping of slurm keys (partition, "
                            "time, ...); fix the file")
        raw.update(doc or {})
    return slurm_settings(raw, flag, f"fix {flag}")
