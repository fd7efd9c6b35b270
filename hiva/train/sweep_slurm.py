"""The ``slurm`` section of a sweep file (hiva.train.sweep): its keys and their checks, each
failure a one-line ``HivaError`` naming the fix. Imports neither torch nor numpy."""

from __future__ import annotations

import math
import re
from typing import Any

from hiva.errors import HivaError

SLURM_KEYS = ("partition", "time", "gpus_per_node", "cpus_per_task", "mem_gb",
              "array_parallelism", "account", "qos", "constraint", "setup")


def minutes(v: Any, where: str) -> int:
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
    raise HivaError(f"{where}: slurm.time {v!r} must be minutes or D-HH:MM:SS; fix the sweep "
                    "file (e.g. time: 240)")


def slurm_settings(v: Any, where: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise HivaError(f"{where}: slurm must be a mapping (partition, time, ...); fix the "
                        "sweep file")
    unknown = sorted(set(v) - set(SLURM_KEYS))
    if unknown:
        raise HivaError(f"{where}: unknown key(s) in slurm: {', '.join(map(str, unknown))}; "
                        f"valid keys are: {', '.join(SLURM_KEYS)}")
    out: dict[str, Any] = {}
    for k, x in v.items():
        if x is None:
            continue
        if k == "time":
            out[k] = minutes(x, where)
        elif k in ("gpus_per_node", "cpus_per_task", "array_parallelism"):
            low = 0 if k == "gpus_per_node" else 1
            if not isinstance(x, int) or isinstance(x, bool) or x < low:
                raise HivaError(f"{where}: slurm.{k} must be a whole number ≥ {low}, got {x!r}; "
                                "fix the sweep file")
            out[k] = x
        elif k == "mem_gb":
            if isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0:
                raise HivaError(f"{where}: slurm.mem_gb must be a number > 0, got {x!r}; fix "
                                "the sweep file")
            out[k] = x
        elif k == "setup":
            lines = x if isinstance(x, list) else [x]
            if not all(isinstance(s, str) for s in lines):
                raise HivaError(f"{where}: slurm.setup must be a list of shell lines; fix the "
                                "sweep file")
            out[k] = lines
        else:
            if not isinstance(x, str) or not x.strip():
                raise HivaError(f"{where}: slurm.{k} must be a text, got {x!r}; fix the sweep "
                                "file")
            out[k] = x
    return out
