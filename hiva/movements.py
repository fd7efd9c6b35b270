"""The movement reader: what a sentence about a face says moves, as (face part, direction).

"the inner ends of the eyebrows are pulled upward" is (inner brow, up); "the lip corners are
pulled up and outward" is (lip corner, up), (lip corner, out). Only the English vocabulary of
face parts and directions lives here, so any text is read the same way: every AU's FACS facts and
a description's clauses (``hiva.corpora.factcheck`` judges one against the other) and the face
parts a corpus names for each AU (``hiva.text_regions``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hiva.facs import AUS, muscle_keys

# Face parts: canonical name → regular expression (longest, most specific first when matching).
# A part's parent (``_PARENT``) contains it: a movement of one relates to the other. The brow
# ridge and the eyeball are bone and globe: no AU moves them, so a row that does is wrong (and
# "upper" or "lower brows", which no face has, are read as the ridge).
PARTS: tuple[tuple[str, str], ...] = (
    ("brow ridge", r"(?:(?:inner|outer|lateral|medial|upper) )?(?:brow|supraorbital) ridges?|"
                   r"brow ?bones?|(?:upper|lower) (?:eye)?brows?"),
    ("inner brow", r"(?:inner|medial) (?:ends? |parts? |corners? )?(?:of (?:the |their )?)?"
                   r"(?:eye)?brows?"),
    ("outer brow", r"(?:outer|lateral) (?:ends? |parts? |corners? )?(?:of (?:the |their )?)?"
                   r"(?:eye)?brows?"),
    ("brow", r"(?:eye)?brows?"),
    ("upper lid", r"upper (?:eye)?lids?"),
    ("lower lid", r"lower (?:eye)?lids?"),
    ("eyelid", r"(?:eye)?lids?"),
    ("eyeball", r"eye ?balls?|iris(?:es)?|pupils?"),
    ("eye", r"eyes?(?: (?:opening|aperture)s?)?"),
    ("lip corner", r"(?:lip|mouth) corners?|corners? of the (?:lips?|mouth)"),
    ("upper lip", r"upper lips?"),
    ("lower lip", r"lower lips?"),
    ("lip", r"lips?"),
    ("mouth", r"mouth(?: opening)?"),
    ("nostril", r"nostrils?|nos(?:e|al) wings?|alae"),
    ("nose", r"nose|nasal bridge"),
    ("cheek", r"cheeks?(?:bones?)?"),
    ("chin", r"chin(?: boss| skin)?"),
    ("jaw", r"jaw|mandible"),
    ("forehead", r"forehead"),
    ("nasolabial furrow", r"nasolabial (?:furrow|fold|line)s?"),
    ("upper teeth", r"upper (?:front )?(?:teeth|tooth)"),
    ("lower teeth", r"lower (?:front )?(?:teeth|tooth)"),
    ("teeth", r"teeth|tooth"),
    ("tongue", r"tongue"),
)
_PARENT = {"inner brow": "brow", "outer brow": "brow", "upper lid": "eyelid",
           "lower lid": "eyelid", "eyelid": "eye", "lip corner": "lip", "upper lip": "lip",
           "lower lip": "lip", "lip": "mouth", "nostril": "nose", "upper teeth": "teeth",
           "lower teeth": "teeth"}

# Directions: words (verbs, adverbs, the agent nouns of FACS names) → up, down, in, out,
# together, apart, forward, back, tense, relax, deep, and the shapes flat and curved. "lower" and
# "part" are left out: they are mostly an adjective and a noun here. "together" and "apart" are
# kinds of "in" and "out" (``GENERAL``): "the lips narrow" agrees with facts that press them
# together; "the eyes are drawn together" does not agree with facts that only narrow them.
_DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("up", r"up|upwards?|rais(?:e|es|ed|ing)|raiser|lift(?:s|ed|ing)?|ris(?:e|es|en|ing)|rose|"
           r"elevat(?:e|es|ed|ing)|heighten(?:s|ed)?"),
    ("down", r"down|downwards?|lowered|lowers|lowering|lowerer|depress(?:es|ed|ing)?|depressor|"
             r"drops?|dropped|dropping|sag(?:s|ged|ging)?|droop(?:s|ed|ing)?|fall(?:s|en|ing)?"),
    ("together", r"together"),
    ("apart", r"apart|separat(?:e|es|ed|ing)|parted|(?<=lips )part"),
    ("in", r"inwards?|narrow(?:s|ed|ing)?|clos(?:e|es|ed|ing)\b(?! to)"),
    ("out", r"out(?! of)|outwards?|wide|widen(?:s|ed|ing)?|spread(?:s|ing)?|open(?:s|ed|ing)?|"
            r"stretch(?:es|ed|ing)?|stretcher|sideways"),
    ("forward", r"forwards?|protrud(?:e|es|ed|ing)|pout(?:s|ed|ing)?|push(?:es|ed)? out"),
    ("back", r"backwards?|back|retract(?:s|ed|ing)?"),
    ("tense", r"tight(?:en|ens|ened|ening|ly)?|tightener|tense[sd]?|tensing|taut|"
              r"squeez(?:e|es|ed|ing)"),
    ("relax", r"relax(?:es|ed|ing)?|loosen(?:s|ed|ing)?|loose(?:ly)?|slack(?:en|ens|ened)?|"
              r"soft(?:en|ens|ened)?"),
    ("flat", r"straighten(?:s|ed|ing)?|flatten(?:s|ed|ing)?|flat"),
    ("curved", r"arch(?:es|ed|ing)?|curv(?:e|es|ed|ing)|round(?:ed|s)?|crescent|bent|"
               r"bend(?:s|ing)?"),
    ("deep", r"deepen(?:s|ed|ing)?|deeper"),
)
OPPOSITE = {"up": "down", "down": "up", "in": "out", "out": "in", "together": "apart",
            "apart": "together", "forward": "back", "back": "forward", "tense": "relax",
            "relax": "tense", "flat": "curved", "curved": "flat", "deep": "shallow",
            "shallow": "deep"}
GENERAL = {"together": "in", "apart": "out"}
NEGATION = re.compile(r"\b(?:not|no|never|without|neither|nor)\b|n't\b", re.I)
_BOUNDS = re.compile(r"[;.!?]|,|\b(?:but|while|whereas)\b", re.I)  # of the reader's clauses
_PART_RE = re.compile(r"\b(?:" + "|".join(f"(?P<p{i}>{rx})" for i, (_, rx) in
                                           enumerate(PARTS)) + r")\b", re.I)
_DIR_RE = re.compile(r"\b(?:" + "|".join(f"(?P<d{i}>{rx})" for i, (_, rx) in
                                          enumerate(_DIRECTIONS)) + r")\b", re.I)


@dataclass(frozen=True)
class Movement:
    part: str
    direction: str


def parts_in(text: str) -> list[tuple[int, int, str]]:
    """(start, end, part) of each part named in ``text``."""
    out = []
    for m in _PART_RE.finditer(text):
        out.append((m.start(), m.end(), PARTS[int(m.lastgroup[1:])][0]))
    return out


def _directions_in(text: str, parts) -> list[tuple[int, str]]:
    """(position, direction) of each direction word outside the parts' names ("the eye
    opening" is a part, not an opening)."""
    out = []
    for m in _DIR_RE.finditer(text):
        if any(a <= m.start() < b for a, b, _ in parts):
            continue
        out.append((m.start(), _DIRECTIONS[int(m.lastgroup[1:])][0]))
    return out


@lru_cache(maxsize=1)
def _muscle_re() -> re.Pattern:
    """The FACS table's muscle names, whole ("frontalis, pars medialis") and short ("depressor
    anguli oris" is not a movement down, "pars medialis" no "medial")."""
    names = {k.strip() for a in AUS.values() for mu in a.muscles
             for k in [*muscle_keys(mu), mu.lower().replace("relaxation of ", "")]}
    keys = sorted((n for n in names if n), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keys) + r")\b", re.I)


@dataclass(frozen=True)
class Clause:
    """One clause of a text as the reader sees it."""

    text: str  # as written
    moves: tuple[Movement, ...]  # the movements it claims
    negated: tuple[Movement, ...]  # the movements it names under a negation ("do not tighten")
    parts: tuple[str, ...]  # every part it names, moved or not
    unanchored: tuple[str, ...]  # directions with no part to belong to ("a downward pull")


def mask_muscles(text: str) -> str:
    """``text`` with each muscle name of the FACS table blanked to x's of the same length, so a
    name is no part or direction word ("depressor anguli oris" is not a movement down)."""
    return _muscle_re().sub(lambda m: "x" * len(m.group(0)), text)


def read_clauses(text: str) -> list[Clause]:
    """``text`` clause by clause (split at , ; . ! ? and "but", "while", "whereas"): in each,
    every direction word paired with the nearest part named before it in the clause, else a part
    right after it ("raised brows", "widening the mouth"), else the last part named earlier in
    the sentence ("the lip corners are pulled up, and outward"). A direction after a
    negation ("not", "without", "n't", ...) is negated: "the lids are raised without cheek lift"
    claims (eyelid, up) and negates (cheek, up)."""
    out: list[Clause] = []
    masked = mask_muscles(text)
    start, subject = 0, None
    for m in [*_BOUNDS.finditer(masked), None]:
        end = m.start() if m else len(masked)
        clause = masked[start:end]
        if clause.strip():
            parts = parts_in(clause)
            neg = NEGATION.search(clause)
            moves, negated, loose = [], [], []
            for pos, d in _directions_in(clause, parts):
                before = [p for q, _, p in parts if q < pos]
                # a part right after the direction is its object ("widening the mouth", "raised
                # brows"): at most three words between them
                after = [p for q, _, p in parts
                         if q > pos and len(clause[pos:q].split()) <= 4]
                part = before[-1] if before else (after[0] if after else subject)
                if part is None:
                    loose.append(d)
                elif neg and neg.start() < pos:
                    negated.append(Movement(part, d))
                else:
                    moves.append(Movement(part, d))
            if parts:
                subject = parts[-1][2]
            out.append(Clause(text[start:end].strip(), tuple(dict.fromkeys(moves)),
                              tuple(dict.fromkeys(negated)), tuple(p for _, _, p in parts),
                              tuple(loose)))
        if m is not None and m.group(0) in ";.!?":
            subject = None  # a new sentence
        start = m.end() if m else len(masked)
    return out


def movements(text: str) -> list[Movement]:
    """The movements ``text`` claims (``read_clauses``), in order, each once."""
    return list(dict.fromkeys(m for c in read_clauses(text) for m in c.moves))


# Where a visible feature (``FEATURE``: wrinkles, bulges, dimples...) forms: a preposition
# class and the part after it ("dimples form in the cheeks just beyond the lip corners" →
# (on, cheek), (beside, lip corner)).
FEATURE = re.compile(r"\b(?:wrinkl|furrow|crease|fold|line|bulg|dimpl|crow|pucker|expos|visibl|"
                     r"show|reveal|disappear|hidden|thin|thick|bunch|stretch|tight|tense|"
                     r"narrow|wide|shape|flare|slant|oblique|squint|stare|staring)", re.I)
_PLACES: tuple[tuple[str, str], ...] = (
    ("beside", r"beside|beyond|next to|lateral to|outside(?: of)?|at the sides? of"),
    ("below", r"below|beneath|under|underneath"),
    ("above", r"above|over"),
    ("behind", r"behind"),
    ("around", r"around|surrounding"),
    ("between", r"between"),
    ("on", r"on|in|within|across|along"),
)
_PLACE_RE = re.compile(r"\b(?:" + "|".join(f"(?P<w{i}>{rx})" for i, (_, rx) in
                                           enumerate(_PLACES)) + r")\b", re.I)


def places(text: str) -> list[tuple[str, str]]:
    """(preposition class, part) of each preposition followed by a part within four words and
    no other preposition ("on the skin beside the lip corners" is (beside, lip corner))."""
    out = []
    masked = mask_muscles(text)
    parts = parts_in(masked)
    preps = list(_PLACE_RE.finditer(masked))
    for i, m in enumerate(preps):
        stop = preps[i + 1].start() if i + 1 < len(preps) else len(masked)
        after = [p for q, _, p in parts if m.end() <= q < stop
                 and len(masked[m.end():q].split()) <= 4]
        if after:
            out.append((_PLACES[int(m.lastgroup[1:])][0], after[0]))
    return out


def related(a: str, b: str) -> bool:
    """The same part, or one contains the other (one level: "lip corner" and "lip", not
    "lip corner" and "mouth")."""
    return a == b or _PARENT.get(a) == b or _PARENT.get(b) == a


def within(part: str, whole: str) -> bool:
    """``part`` is ``whole`` or one of its parts ("inner brow" within "brow")."""
    return part == whole or _PARENT.get(part) == whole
