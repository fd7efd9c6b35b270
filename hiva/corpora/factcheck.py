"""An AU's FACS facts as the description verifier reads them (``hiva.corpora.verify``).

A *movement* is (face part, direction): "the inner ends of the eyebrows are pulled upward" is
(inner brow, up). The movement reader (``hiva.movements``) turns every AU's facts in
``hiva.facs`` (its name, e.g. "Inner Brow Raiser", and its appearance cues) into that AU's
movements, the parts its facts name, and the movements they name under a negation ("without
stretching the lips"). An AU added to the FACS table is covered with no code change: only the
English vocabulary of parts and directions is code.

A movement of a description is judged against its own AU's facts (``judge_movement``):

- *supported*: the facts move the same part (or a part it contains, or that contains it: "the
  lips" and "the lip corners") the same way, or a specific way of it ("narrow" is supported by
  facts that press the lips "together"; "together" is not supported by facts that only narrow);
- ``contradicts_facts``: the facts move that part the opposite way ("the brows are pulled
  downward" for AU1);
- ``describes_other_au``: the facts neither move nor name that part at all ("the jaw drops" for
  AU2, "the lip corners are pulled down" for AU6);
- ``unsupported_movement``: the facts name the part but never move it this way ("the brow is
  pushed back" for AU1, "the eyes are drawn together" for AU4).

``cue_found`` says whether a text uses one of the AU's distinguishing cue words (the table's
``cue words`` line: word patterns and ``[part direction]`` movements), outside negated clauses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from hiva.facs import AUS
from hiva.movements import (
    FEATURE,
    GENERAL,
    NEGATION,
    OPPOSITE,
    Movement,
    mask_muscles,
    places,
    read_clauses,
    related,
    within,
)


@dataclass(frozen=True)
class AUFacts:
    moves: frozenset[Movement]
    parts: frozenset[str]  # every part the facts name, moved or not
    negated: frozenset[Movement]  # movements the facts name only to deny them
    places: frozenset[tuple[str, str]]  # where its features form: ("beside", "lip corner")


@cache
def au_facts(au: int) -> AUFacts:
    """AU ``au``'s movements, named parts and denied movements, from its name and cues."""
    a = AUS[au]
    clauses = [c for t in [a.name, *a.appearance, a.region] for c in read_clauses(t)]
    moves = {m for c in clauses for m in c.moves}
    parts = {p for c in clauses for p in c.parts} | {m.part for m in moves}
    return AUFacts(frozenset(moves), frozenset(parts),
                   frozenset(m for c in clauses for m in c.negated),
                   frozenset(p for t in a.appearance if FEATURE.search(t) for p in places(t)))


def _general(d: str) -> str:
    return GENERAL.get(d, d)


def supports(facts: AUFacts, m: Movement) -> bool:
    return any(related(f.part, m.part) and (f.direction == m.direction
                                            or _general(f.direction) == m.direction)
               for f in facts.moves)


def judge_movement(m: Movement, facts: AUFacts) -> str | None:
    """None when the facts support ``m``; else why not (see the module's docstring)."""
    if supports(facts, m):
        return None
    rel = [f for f in facts.moves if related(f.part, m.part)]
    if any(_general(f.direction) == OPPOSITE[_general(m.direction)] for f in rel):
        return "contradicts_facts"
    if not any(related(p, m.part) for p in facts.parts):
        return "describes_other_au"
    return "unsupported_movement"


def aus_moving(m: Movement, but: int) -> tuple[int, ...]:
    """The AUs other than ``but`` whose facts support ``m``."""
    return tuple(n for n in AUS if n != but and supports(au_facts(n), m))


CUE_MOVE = re.compile(r"^\[(.+) (\w+)\]$")


Cues = tuple[re.Pattern | None, tuple[Movement, ...]]


def compile_cues(cue_words) -> Cues:
    """Cue words of the table as (one pattern of the word cues, the ``[part direction]``
    movement cues)."""
    words, moves = [], []
    for c in cue_words:
        m = CUE_MOVE.match(c)
        if m:
            moves.append(Movement(m.group(1), m.group(2)))
        else:
            words.append(c)
    rx = re.compile(r"\b(?:" + "|".join(words) + ")", re.I) if words else None
    return rx, tuple(moves)


@cache
def _cues(au: int) -> Cues:
    return compile_cues(AUS[au].cue_words)


def claimed(text: str) -> str:
    """What a clause claims: its text with muscle names blanked ("pars medialis" is no
    "medial"), up to its negation ("without cheek lift" says nothing of the cheek)."""
    said = mask_muscles(text)
    neg = NEGATION.search(said)
    return said[:neg.start()] if neg else said


def word_cue(cues: Cues, clause_text: str) -> str | None:
    """The first word cue of ``cues`` that a clause claims."""
    rx = cues[0]
    m = rx.search(claimed(clause_text)) if rx is not None else None
    return m.group(0).lower() if m else None


def move_cue(cues: Cues, moves) -> str | None:
    """The first of ``moves`` that is a movement cue of ``cues`` (its part within the cue's,
    the same way or a specific way of it), as "part direction"."""
    for m in moves:
        for c in cues[1]:
            if within(m.part, c.part) and c.direction in (m.direction, _general(m.direction)):
                return f"{m.part} {m.direction}"
    return None


def cue_found(text: str, au: int, clauses=None) -> str | None:
    """The first distinguishing cue of ``au`` that ``text`` uses (a word, or a movement as
    "part direction"), None when it uses none; ``clauses``: ``read_clauses(text)`` when
    already read. An AU with no cue words has nothing to find (returns "")."""
    cues = _cues(au)
    if cues[0] is None and not cues[1]:
        return ""
    clauses = read_clauses(text) if clauses is None else clauses
    for c in clauses:
        if w := word_cue(cues, c.text):
            return w
    return move_cue(cues, [m for c in clauses for m in c.moves])
