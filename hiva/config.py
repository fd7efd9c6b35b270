"""Stage configs: frozen dataclasses filled from YAML (``--config``) with CLI flags overriding.

Every stage writes its resolved config beside its outputs (``config.yaml``) and records its hash
in its manifest, so a folder always says how it was made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from hiva.errors import HivaError
from hiva.runtime import write_text_atomic

T = TypeVar("T")
# The training recipes the package carries (demo, bp4d); configs/ in a checkout links to them.
SHIPPED_CONFIGS = Path(__file__).parent / "configs"


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _typed(key: str, value: Any, hint: Any, where: str, default: Any = None) -> Any:
    """``value`` as the field's declared type: YAML hands ``1e-3`` over as a string and ``10``
    where a float is meant; a value that cannot be read as the type is named with its key."""
    if value is None:
        return None
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    bases = [typing.get_origin(t) or t for t in options]
    if Any in bases:
        return value
    for base in bases:  # already acceptable (bool is not taken for a number)
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base in (bool, str, dict) and isinstance(value, base):
            return value
        if dataclasses.is_dataclass(base) and isinstance(value, (dict, base)):
            return value  # a section (e.g. TrainConfig.model); its own class checks the keys
        if base is tuple and isinstance(value, (list, tuple)):
            return tuple(value)  # YAML lists become tuples so configs stay hashable and frozen
        if base is tuple and isinstance(value, (int, str)):
            return value  # "1,2,3" or 1: the config splits it itself
    if isinstance(value, str):
        text = value.strip()
        for base in bases:
            try:
                if base is int:
                    return int(text)
                if base is float:
                    return float(text)
            except ValueError:
                continue
            if base is bool and text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
    names = " or ".join({int: "an integer", float: "a number", bool: "true/false", str: "a text",
                         dict: "a mapping", tuple: "a list"}.get(b, str(b)) for b in bases)
    example = default if isinstance(default, (int, float, str)) and default is not True else {
        int: 10, float: 0.001, bool: "true", str: "name", tuple: "[1, 2]"}.get(bases[0], "...")
    raise HivaError(f"{where} key {key}: {value!r} is not {names}; fix the config (e.g. "
                    f"{key}: {example})")


def coerce_fields(cls, data: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """``data`` checked against the dataclass ``cls``: unknown keys refused, values read as the
    fields' types (see ``_typed``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    where = where or f"config for {cls.__name__}"
    retired = [k for k in unknown if k in getattr(cls, "_retired", {})]
    if retired:  # a key an older hiva wrote: say what it means instead of listing valid keys
        raise HivaError(f"{where} has {retired[0]}: {cls._retired[retired[0]]}")
    if unknown:
        raise HivaError(
            f"unknown key(s) in the {where}: {', '.join(unknown)}; "
            f"valid keys are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    return {k: _typed(k, v, hints.get(k, Any), where, fields[k].default)
            for k, v in data.items()}


SET_HELP = ("Any config key as KEY=VALUE, repeatable; dotted keys reach into a section "
            "(model.d_model=128). Order: --config file, then --set, then the named flags.")


def yaml_value(raw: str) -> Any:
    """A ``KEY=VALUE`` item's value (``--set``, ``--slurm``) read as YAML (a number, a list,
    ``null``); text that is not YAML as given; empty → None."""
    import yaml

    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def read_mapping(path: str | Path, what: str, missing: str) -> dict[str, Any]:
    """The mapping a YAML file holds ({} when empty); a missing file is the line ``missing``, a
    file that does not parse or holds no mapping one line naming ``what`` and the fix."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise HivaError(missing)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "parse error"
        raise HivaError(f"{what} {p} is not valid YAML ({first}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HivaError(f"{what} {p} must hold a mapping of key: value; fix the file")
    return data


def parse_sets(sets: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``["lr=1e-3", "model.d_model=128"]`` → ``{"lr": "1e-3", "model": {"d_model": 128}}``;
    values are read as YAML scalars/lists, then typed by ``coerce_fields``."""
    out: dict[str, Any] = {}
    for item in sets or ():
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key or any(not part for part in key.split(".")):
            raise HivaError(f"--set {item!r}: write KEY=VALUE, e.g. --set lr=0.001 or "
                            "--set model.d_model=128")
        value = yaml_value(raw)
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HivaError(f"--set {item!r}: {part} is set both as a value and a section")
        node[leaf] = value
    return out


def _merge(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over ``into``; a section (dict) given in both is merged key by key."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            into[k] = _merge(dict(into[k]), v)
        else:
            into[k] = v
    return into


def shipped_configs() -> list[str]:
    """Names of the recipes the package carries (``hiva/configs/<name>.yaml``): ``demo``, ..."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def resolve_config(path: str | Path) -> Path:
    """``path`` itself when it exists or looks like a path (a folder or a suffix); otherwise a
    recipe the package ships by that name (``--config demo``), so an installed wheel needs no
    checkout; otherwise ``path`` unchanged (the caller reports it missing)."""
    p = Path(path)
    if p.exists() or p.suffix or len(p.parts) != 1:
        return p
    shipped = SHIPPED_CONFIGS / f"{p.name}.yaml"
    return shipped if shipped.is_file() else p


def load_config(cls: type[T], path: str | Path | None = None,
                sets: list[str] | tuple[str, ...] | None = None, **overrides: Any) -> T:
    """Build ``cls`` from an optional YAML file, then ``--set KEY=VALUE`` items, then non-None
    ``overrides`` (the named CLI flags); sections (``model``) merge key by key."""
    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_config(path)
        data.update(read_mapping(path, "config file", f"config file {path} does not exist; "
                                 "pass an existing YAML file to --config, or the name of a "
                                 f"recipe hiva ships ({', '.join(shipped_configs())})"))
    _merge(data, parse_sets(sets))
    _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**coerce_fields(cls, data))
    except TypeError as e:
        raise HivaError(f"bad config for {cls.__name__}: {e}") from None


def count_rule(name: str, value: Any, low: int = 1, none: str | None = None) -> tuple[bool, str]:
    """``(holds, what must hold)`` for a count setting (a batch size, faces per frame): a whole
    number, not a bool, ≥ ``low``; with ``none``, also None, which means ``none``."""
    ok = (none is not None and value is None) or (
        isinstance(value, int) and not isinstance(value, bool) and value >= low)
    return ok, f"{name} must be ≥ {low}{f' (or none: {none})' if none else ''}, got {value!r}"


def check_config(name: str, checks: list[tuple[bool, str]]) -> None:
    """Each stage config's ``__post_init__`` lists ``(condition, what must hold)``; the first that
    fails becomes one line naming the stage, the rule and the fix."""
    for ok, msg in checks:
        if not ok:
            raise HivaError(f"bad {name} config: {msg}; fix the config or flag")


def config_dict(cfg: Any) -> dict[str, Any]:
    """``cfg`` as plain YAML-ready data; sections (nested configs) become mappings, leaving out
    the keys a class lists in ``_unsaved`` (``{"model": ("aus",)}``: filled at run time)."""
    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    skip = getattr(cfg, "_unsaved", {})
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = {k: x for k, x in config_dict(v).items() if k not in skip.get(f.name, ())}
        out[f.name] = plain(v)
    return out


def config_hash(cfg: Any, exclude: tuple[str, ...] = ()) -> str:
    d = {k: v for k, v in config_dict(cfg).items() if k not in exclude}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_config(cfg: Any, path: str | Path) -> None:
    """``cfg`` as YAML at ``path``, atomically (a kill leaves the old file or the new one)."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(config_dict(cfg), sort_keys=False))


def wrote_config(path: str | Path, cls: type) -> bool:
    """Whether ``path`` is a file ``write_config`` wrote for a ``cls``: a YAML mapping whose keys
    are all ``cls``'s fields, ``out`` among them (an older hiva wrote fewer). How a command knows
    its own folder from a user's that holds a ``config.yaml`` of something else."""
    import yaml

    try:
        d = yaml.safe_load(Path(path).read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return False
    names = {f.name for f in dataclasses.fields(cls)}
    return isinstance(d, dict) and "out" in d and set(d) <= names
