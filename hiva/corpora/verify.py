"""The description verifier: a verdict for every clause of a description, as a FACS coder reads it.

A row is kept only when each of its clauses is *verified* or *harmless*, at least one is
verified, and the row uses a word that tells its AU from its nearest neighbour (the FACS table's
``unlike``/``cue words``: AU1 says "inner", AU2 "outer", AU6 "cheek" or "crow's feet", AU7 that
the lids tighten, AU14 "dimple", AU23 that the lips tighten or thin, AU24 "press").

- *verified*: every movement it claims is the AU's own (``factcheck.judge_movement``), and any
  muscle it names is the AU's; or, with no movement, it gives a visible feature (wrinkles,
  furrows, bulges, dimples, teeth shown, a shape) of a part the facts name.
- *harmless*: framing ("Code this action when"), a negation of a movement that is not the AU's
  ("without cheek lift" for AU7), or a part of the facts named and nothing said of it ("the
  medial ends of the brows appear"; a row needs one verified clause).

A clause that is neither fails with the first of these reasons:

- ``intensity_tag``: an intensity or evidence tag, the prompt's residue ("(slight evidence)");
- ``invented_anatomy``: a muscle called a face part ("zygomaticus major, which is the upper
  part of the lip"), or an agent noun no table muscle has ("the chin pressor");
- ``other_au_muscle``: a muscle of the table that is another AU's;
- ``other_au_action``: a word for another AU's action ("a wink" in AU6), unless the AU often
  comes with that one (a smile in AU6);
- ``other_au_cue``: another AU's appearance cue, copied (the prompt's example AU leaking in:
  "the lower face lengthens without stretching the lips" in AU4);
- ``neighbour_cue``: a cue word of the nearest neighbour, outside a negation ("short wrinkles
  form above the inner brow" in AU2, "the lips are pressed" in AU23);
- ``negates_own_movement``: the AU's own movement denied ("the eyes do not tighten" for AU7);
- ``contradicts_facts``, ``describes_other_au``, ``unsupported_movement``: a movement its
  facts do not support (``hiva.corpora.factcheck``);
- ``unanchored_movement``: a direction that belongs to no face part ("involves a downward
  pull");
- ``wrong_contact``: a part pressed or pushed against a part the facts never name ("the lips
  are pressed to the chin");
- ``wrong_place``: a feature (wrinkles, bulges, dimples...) placed where the facts do not put
  it ("dimples form on the lips", "the skin beneath the lip corners bulges" for AU14);
- ``other_part``: a part the facts never name, outside a negation ("the chin takes an oblique
  shape" for AU1, "the lower teeth may be exposed" for AU10).

Then, for the row: ``unverified`` (no clause verified) and ``no_distinguishing_cue``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache

from hiva.corpora.factcheck import (
    CUE_MOVE,
    Cues,
    au_facts,
    aus_moving,
    claimed,
    compile_cues,
    cue_found,
    judge_movement,
    move_cue,
    supports,
    word_cue,
)
from hiva.facs import AUS, INTENSITIES, muscle_keys
from hiva.movements import (
    FEATURE,
    NEGATION,
    PARTS,
    Clause,
    Movement,
    mask_muscles,
    parts_in,
    places,
    read_clauses,
    related,
)

# Every reason a clause or row can fail, in the order they are tried.
REASONS = ("intensity_tag", "invented_anatomy", "other_au_muscle", "other_au_action",
           "other_au_cue", "neighbour_cue", "negates_own_movement", "contradicts_facts",
           "describes_other_au", "unsupported_movement", "unanchored_movement", "wrong_contact",
           "wrong_place", "other_part", "unverified", "no_distinguishing_cue")

_LEVELS = "|".join(INTENSITIES.values())
_TAG = re.compile(
    rf"\([^)]*\b(?:{_LEVELS}|evidence|intensity)\b[^)]*\)|"
    rf"\b(?:{_LEVELS}) (?:evidence|way|change)\b|\bintensity [A-E]\b|\b[A-E] intensity\b", re.I)
_AGENT = re.compile(r"\b(?:\w+ )?(?:pressor|tensor|retractor|elevator|constrictor|sphincter|"
                    r"adductor|abductor|flexor|extensor)s?\b", re.I)
_PART_WORDS = "|".join(rx for _, rx in PARTS)
# a muscle (blanked by the reader to x's, or "muscle") said to be a face part
_EQUATES = re.compile(rf"(?:\bx{{4,}}|\bmuscles?)\s*,?\s*(?:which|that)?\s*(?:is|are)\s+"
                      rf"(?:the|a|an)\b[^,;]*?\b(?:{_PART_WORDS})\b", re.I)
_CONTACT = re.compile(r"\b(?:against|onto|into|to|toward|towards)\s+(?:the |their |its |each "
                      r"|one |other )?(?:\w+ )?$", re.I)
# words for an AU's whole action → the AUs they name
_ACTIONS = {"wink": (46,), "blink": (45,), "smil": (12,), "frown": (4, 15), "scowl": (4,),
            "squint": (6, 7), "sneer": (9, 10), "pout": (17, 18, 22), "grimac": (20,),
            "yawn": (26, 27), "kiss": (18,)}
_AU_NAMES = re.compile("|".join(re.escape(a.name) for a in AUS.values()), re.I)
_ACTION_RE = re.compile(r"\b(" + "|".join(_ACTIONS) + r")\w*", re.I)


@dataclass(frozen=True)
class ClauseVerdict:
    text: str
    verdict: str  # "verified", "harmless", or one of REASONS
    why: str = ""  # what was found: the movement, muscle, word or tag


@dataclass(frozen=True)
class Verification:
    reason: str | None  # None: the row is kept
    why: str = ""  # the failing clause's finding, or the row's
    clauses: tuple[ClauseVerdict, ...] = field(default=())
    cue: str | None = None  # the distinguishing cue the row uses

    @property
    def ok(self) -> bool:
        return self.reason is None


@cache
def _muscle_index() -> tuple[re.Pattern, dict[str, frozenset[int]]]:
    """Every muscle name of the table (full, base and alternative names) → the AUs that have
    it, and one pattern finding the longest."""
    owners: dict[str, set[int]] = {}
    for n, a in AUS.items():
        for mu in a.muscles:
            full = mu.lower().replace("relaxation of ", "").replace(" relaxed", "")
            for k in {full, *muscle_keys(mu)}:
                owners.setdefault(k.strip(), set()).add(n)
    keys = sorted(owners, key=len, reverse=True)
    rx = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keys) + r")\b", re.I)
    return rx, {k: frozenset(v) for k, v in owners.items()}


@cache
def _neighbour_cues(au: int) -> Cues:
    """The cue words of ``au``'s nearest neighbour that ``au``'s own facts do not use (AU13's
    lip corners go up, as AU12's do: that cue is not AU12's alone next to AU13)."""
    n = AUS[au].unlike
    if n not in AUS:
        return None, ()
    own = mask_muscles(" ".join([AUS[au].name, *AUS[au].appearance]))
    facts = au_facts(au)

    def own_uses(w: str) -> bool:
        m = CUE_MOVE.match(w)
        return (supports(facts, Movement(*m.groups())) if m
                else bool(re.search(rf"\b(?:{w})", own, re.I)))

    return compile_cues([w for w in AUS[n].cue_words if not own_uses(w)])


def _neighbour_cue(c: Clause, au: int) -> str | None:
    """The neighbour's cue (``_neighbour_cues``) that clause ``c`` claims."""
    cues = _neighbour_cues(au)
    return word_cue(cues, c.text) or move_cue(cues, c.moves)


def _copied_cue(clause: str, au: int) -> str | None:
    """The appearance cue of another AU that ``clause`` copies (difflib ratio ≥ 0.8, and closer
    than to any of its own AU's cues): the prompt's example AU leaking in."""
    words = clause.lower().split()
    if len(words) < 4:
        return None
    best, best_ratio = None, 0.0
    for n, a in AUS.items():
        for cue in a.appearance:
            r = SequenceMatcher(None, words, cue.lower().split(), autojunk=False).ratio()
            if r > best_ratio:
                best, best_ratio = (n, cue), r
    if best is None or best_ratio < 0.8 or best[0] == au:
        return None
    return f"AU{best[0]}: {best[1]}"


def _part_starts(text: str, names: list[str]) -> list[int]:
    return [a for a, _, p in parts_in(text) if p in names]


def _fmt(m) -> str:
    return f"{m.part} {m.direction}"


def judge_clause(c: Clause, au: int) -> ClauseVerdict:
    """The verdict on one clause of a description of ``au``."""
    facts = au_facts(au)
    a = AUS[au]
    if t := _TAG.search(c.text):
        return ClauseVerdict(c.text, "intensity_tag", t.group(0))
    rx, owners = _muscle_index()
    masked = mask_muscles(c.text)
    if t := _EQUATES.search(masked):
        return ClauseVerdict(c.text, "invented_anatomy", c.text[t.start():t.end()])
    if t := _AGENT.search(_AU_NAMES.sub(" ", c.text)):  # "Lip Pressor" is an AU's name
        return ClauseVerdict(c.text, "invented_anatomy", t.group(0))
    named = [m.group(0) for m in rx.finditer(c.text)]
    for name in named:
        if au not in owners[name.lower()]:
            others = ", ".join(f"AU{n}" for n in sorted(owners[name.lower()]))
            return ClauseVerdict(c.text, "other_au_muscle", f"{name} ({others})")
    for t in _ACTION_RE.finditer(c.text):
        theirs = _ACTIONS[t.group(1).lower()]
        if au not in theirs and not set(theirs) & set(a.often_with):
            return ClauseVerdict(c.text, "other_au_action", t.group(0))
    if other := _copied_cue(c.text, au):
        return ClauseVerdict(c.text, "other_au_cue", other)
    if said := _neighbour_cue(c, au):
        return ClauseVerdict(c.text, "neighbour_cue", f"{said} (AU{a.unlike})")
    for m in c.negated:
        if supports(facts, m) and not any(related(f.part, m.part) and f.direction == m.direction
                                          for f in facts.negated):
            return ClauseVerdict(c.text, "negates_own_movement", "not " + _fmt(m))
    for m in c.moves:
        if why := judge_movement(m, facts):
            others = aus_moving(m, au)
            tail = f" ({', '.join(f'AU{n}' for n in others[:4])})" if others else ""
            return ClauseVerdict(c.text, why, _fmt(m) + tail)
    if c.unanchored:
        return ClauseVerdict(c.text, "unanchored_movement", c.unanchored[0])
    known = [p for p in c.parts if any(related(p, q) for q in facts.parts)]
    for start, end, part in parts_in(masked):  # pressed against it: a part of the facts
        if _CONTACT.search(masked[:start]) and not any(related(part, q) for q in facts.parts):
            return ClauseVerdict(c.text, "wrong_contact", masked[start:end])
    if FEATURE.search(masked):
        for rel, part in places(c.text):
            if not any(r == rel and related(p, part) for r, p in facts.places):
                return ClauseVerdict(c.text, "wrong_place", f"{rel} {part}")
    strange = [p for p in c.parts if p not in known]
    neg = NEGATION.search(masked)
    if strange and not (neg and all(q > neg.start() for q in _part_starts(masked, strange))):
        return ClauseVerdict(c.text, "other_part", strange[0])
    if c.moves or (known and FEATURE.search(claimed(c.text))):
        return ClauseVerdict(c.text, "verified")
    return ClauseVerdict(c.text, "harmless")


def verify(text: str, au: int) -> Verification:
    """Every clause of ``text`` judged as a description of ``au``, and the row's verdict."""
    clauses = read_clauses(text)
    verdicts = tuple(judge_clause(c, au) for c in clauses)
    if t := _EQUATES.search(mask_muscles(text)):  # across a comma: "X, which is the lip"
        said = text[t.start():t.end()]
        tail = said.rsplit(",", 1)[-1].strip()
        verdicts = tuple(ClauseVerdict(v.text, "invented_anatomy", said) if v.text == tail
                         else v for v in verdicts)
        return Verification("invented_anatomy", f"{said} in “{text}”", verdicts,
                            cue_found(text, au, clauses))
    cue = cue_found(text, au, clauses)
    for v in verdicts:
        if v.verdict not in ("verified", "harmless"):
            return Verification(v.verdict, f"{v.why} in “{v.text}”", verdicts, cue)
    if not any(v.verdict == "verified" for v in verdicts):
        return Verification("unverified", "no clause says what the AU does", verdicts, cue)
    if cue is None:
        n = AUS[au].unlike
        return Verification("no_distinguishing_cue",
                            f"nothing tells it from AU{n} ({AUS[au].contrast})", verdicts, cue)
    return Verification(None, "", verdicts, cue)
