"""Group names and the primary contrast of ``hiva report``.

A sweep's runs group by (arm, label fraction): ``arm`` at label fraction 1.0, else ``arm@5%``
(``group_name``). The primary contrast is the one comparison a sweep is run for, written
``"A - B"`` (two group names, a minus between spaces: Δ = A − B), in the sweep YAML
(``primary: "corpus@5% - shuffled@5%"``, carried into sweep.json) or as ``hiva report --primary``.
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


def check_primary(value, arms, fractions: list[float], arm_fractions: dict,
                  where: str) -> str | None:
    """The sweep file's ``primary`` as "A - B" (validated against its groups), or None."""
    if value is None:
        return None
    a, b = parse_contrast(value, sweep_groups(arms, fractions, arm_fractions),
                          f"{where}: primary")
    return f"{a} - {b}"
