"""Group names and the primary contrast of ``hiva report``.

A sweep's runs group by (arm, label fraction): ``arm`` at label fraction 1.0, else ``arm@5%``
(``group_name``). The primary contrast is the one comparison a sweep is run for, written
``"A - B"`` (two group names, a minus between spaces: Δ = A − B), or a list of them, in the sweep
YAML (``primary: "corpus@5% - shuffled@5%"``, carried into sweep.json) or as ``hiva report
--primary`` (repeatable).
Imports neither numpy nor torch.
"""

from __future__ import annotations

import re

from hiva.errors import HivaError

CONTRAST = re.compile(r"\s*(\S+)\s+-\s+(\S+)\s*")
EXAMPLE = '"corpus@5% - shuffled@5%"'


def group_name(arm: str, label_fraction: float) -> str:
    """``arm`` at label fraction 1.0, else e.g. ``arm@10%``."""
    return arm if label_fraction == 1.0 else f"{arm}@{100 * label_fraction:g}%"


def parse_contrast(text, groups, what: str) -> tuple[str, str]:
    """(A, B) of ``text`` = "A - B", both among ``groups``; else a one-line HivaError that
    starts with ``what`` (where the contrast was written) and names the fix."""
    names = ", ".join(groups)
    m = CONTRAST.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise HivaError(f"{what} {text!r} is not a contrast \"A - B\" (two group names with a "
                        f"minus between spaces, e.g. {EXAMPLE}); the groups are: {names}")
    a, b = m.groups()
    unknown = [g for g in (a, b) if g not in groups]
    if unknown:
        raise HivaError(f"{what} {text!r} names {unknown[0]}, which is not a group (arm, or "
                        f"arm@N% at a label fraction below 1); the groups are: {names}")
    if a == b:
        raise HivaError(f"{what} {text!r} compares {a} with itself; name two groups, e.g. "
                        f"{EXAMPLE}")
    return a, b


def sweep_groups(arms, fractions: list[float], arm_fractions: dict) -> list[str]:
    """The group names of a sweep's arms × label fractions, in plan order."""
    out = []
    for arm in arms:
        for lf in arm_fractions.get(arm, fractions):
            if group_name(arm, lf) not in out:
                out.append(group_name(arm, lf))
    return out


def primaries(value) -> list:
    """The declared primary contrasts as a list: one "A - B", or a list of them (several
    primary contrasts, e.g. one per label budget; each printed first and Holm-adjusted)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_primary(value, arms, fractions: list[float], arm_fractions: dict,
                  where: str) -> str | list[str] | None:
    """The sweep file's ``primary``: "A - B" or a list of them (validated against its groups),
    or None."""
    if value is None:
        return None
    groups = sweep_groups(arms, fractions, arm_fractions)
    out = [" - ".join(parse_contrast(v, groups, f"{where}: primary")) for v in primaries(value)]
    if not out:
        raise HivaError(f"{where}: primary is an empty list; name a contrast, e.g. {EXAMPLE}")
    return out[0] if isinstance(value, str) else out
