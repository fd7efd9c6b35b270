"""Does a description say what its AU's FACS facts say? Clause-level movement checks.

A *movement* is (face part, direction): "the inner ends of the eyebrows are pulled upward" is
(inner brow, up). The same reader turns every AU's facts in ``hiva.facs`` (its name, e.g. "Inner
Brow Raiser", and its appearance cues) into that AU's movements, and every clause of a
description into the movements it claims. An AU added to the FACS table is covered with no code
change: only the English vocabulary of parts and directions is code (``hiva.movements``, the
reader this module judges with).

A description's movement is judged against its own AU's facts:

- *supported*: the facts move the same part (or a part it contains, or that contains it: "the
  lips" and "the lip corners") the same way;
- ``contradicts_facts``: the facts move that part the opposite way (up/down, in/out,
  forward/back) and never this way ("the brows are pulled downward" for AU1);
- ``describes_other_au``: the facts neither move nor mention that part at all ("the jaw drops" for
  AU2, "the upper lip is pulled down" for AU12, "the lip corners are pulled down" for AU6): the
  clause describes another action. ``other_aus`` names the AUs whose facts it matches.

Anything else (a part the facts mention without a direction, a direction the facts do not
oppose) passes: the check is meant to drop clear errors, not paraphrases. Clauses with a negation
("without cheek lift", "not raised") claim no movement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hiva.facs import AUS
from hiva.movements import OPPOSITE, Movement, movements, parts_in, related


@dataclass(frozen=True)
class AUFacts:
    moves: frozenset[Movement]
    parts: frozenset[str]  # every part the facts name, moved or not


@cache
def au_facts(au: int) -> AUFacts:
    """AU ``au``'s movements and named parts, read from its FACS name and appearance cues."""
    a = AUS[au]
    texts = [a.name, *a.appearance]
    moves = {m for t in texts for m in movements(t)}
    parts = {p for t in [*texts, a.region] for _, _, p in parts_in(t)} | {m.part for m in moves}
    return AUFacts(frozenset(moves), frozenset(parts))


def judge_movement(m: Movement, facts: AUFacts) -> str | None:
    """None when the facts allow ``m``; else ``contradicts_facts`` or ``describes_other_au``."""
    rel = [f for f in facts.moves if related(f.part, m.part)]
    if any(f.direction == m.direction for f in rel):
        return None
    if any(f.direction == OPPOSITE[m.direction] for f in rel):
        return "contradicts_facts"
    if not any(related(p, m.part) for p in facts.parts):
        return "describes_other_au"
    return None


@dataclass(frozen=True)
class FactCheck:
    reason: str | None  # None: consistent
    clause: str = ""  # the movement that failed, as "part direction"
    other_aus: tuple[int, ...] = ()  # AUs whose facts have that movement


def check_facts(text: str, au: int) -> FactCheck:
    """The first movement of ``text`` that its AU's facts do not allow, with the reason."""
    facts = au_facts(au)
    for m in movements(text):
        why = judge_movement(m, facts)
        if why:
            others = tuple(n for n in AUS if n != au and any(
                f.direction == m.direction and related(f.part, m.part)
                for f in au_facts(n).moves))
            return FactCheck(why, f"{m.part} {m.direction}", others)
    return FactCheck(None)
