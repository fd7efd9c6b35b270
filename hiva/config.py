"""Stage configs: frozen dataclasses filled from YAML (``--config``) with CLI flags overriding.

Every stage writes its resolved config beside its outputs (``config.yaml``) and records its hash
in its manifest, so a folder always says how it was made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

from hiva.errors import HivaError

T = TypeVar("T")


def _coerce(cls, data: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HivaError(
            f"unknown config key(s) for {cls.__name__}: {', '.join(unknown)}; "
            f"valid keys are: {', '.join(sorted(fields))}"
        )
    out = {}
    for k, v in data.items():
        # YAML lists become tuples so configs stay hashable and frozen.
        out[k] = tuple(v) if isinstance(v, list) else v
    return out


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build ``cls`` from an optional YAML file, then apply non-None ``overrides`` (CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise HivaError(
                f"config file {p} does not exist; pass an existing YAML file to --config"
            )
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else "parse error"
            raise HivaError(f"config file {p} is not valid YAML ({first}); fix the file") from None
        if not isinstance(loaded, dict):
            raise HivaError(f"config file {p} must hold a mapping of key: value; fix the file")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**_coerce(cls, data))
    except TypeError as e:
        raise HivaError(f"bad config for {cls.__name__}: {e}") from None


def config_dict(cfg: Any) -> dict[str, Any]:
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def config_hash(cfg: Any, exclude: tuple[str, ...] = ()) -> str:
    d = {k: v for k, v in config_dict(cfg).items() if k not in exclude}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_config(cfg: Any, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
