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
# A part's parent (``_PARENT``) contains it: a movement of one relates to the other.
PARTS: tuple[tuple[str, str], ...] = (
    ("inner brow", r"inner (?:ends? |parts? |corners? )?(?:of (?:the |their )?)?(?:eye)?brows?"),
    ("outer brow", r"(?:outer|lateral) (?:ends? |parts? |corners? )?(?:of (?:the |their )?)?"
                   r"(?:eye)?brows?"),
    ("brow", r"(?:eye)?brows?(?: ridges?)?"),
    ("upper lid", r"upper (?:eye)?lids?"),
    ("lower lid", r"lower (?:eye)?lids?"),
    ("eyelid", r"(?:eye)?lids?"),
    ("eye", r"eyes?(?: (?:opening|aperture)s?)?|eye ?balls?"),
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
)
_PARENT = {"inner brow": "brow", "outer brow": "brow", "upper lid": "eyelid",
           "lower lid": "eyelid", "lip corner": "lip", "upper lip": "lip", "lower lip": "lip",
           "nostril": "nose"}

# Directions: words (verbs, adverbs, the agent nouns of FACS names) → up, down, in, out,
# forward, back. "lower" and "part" are left out: they are mostly an adjective and a noun here.
_DIRECTIONS: tuple[tuple[str, str], ...] = (
    ("up", r"up|upwards?|rais(?:e|es|ed|ing)|raiser|lift(?:s|ed|ing)?|ris(?:e|es|en|ing)|rose|"
           r"elevat(?:e|es|ed|ing)|heighten(?:s|ed)?"),
    ("down", r"down|downwards?|lowered|lowers|lowering|lowerer|depress(?:es|ed|ing)?|depressor|"
             r"drops?|dropped|dropping|sag(?:s|ged|ging)?|droop(?:s|ed|ing)?|fall(?:s|en|ing)?"),
    ("in", r"together|inwards?|narrow(?:s|ed|ing)?|clos(?:e|es|ed|ing)\b(?! to)|"
           r"squeez(?:e|es|ed|ing)"),
    ("out", r"outwards?|apart|wide|widen(?:s|ed|ing)?|spread(?:s|ing)?|open(?:s|ed|ing)?|"
            r"stretch(?:es|ed|ing)?|stretcher|sideways|separat(?:e|es|ed|ing)|parted|"
            r"(?<=lips )part"),
    ("forward", r"forwards?|protrud(?:e|es|ed|ing)|pout(?:s|ed|ing)?|push(?:es|ed)? out"),
    ("back", r"backwards?|back|retract(?:s|ed|ing)?"),
)
OPPOSITE = {"up": "down", "down": "up", "in": "out", "out": "in", "forward": "back",
            "back": "forward"}
_NEGATION = re.compile(r"\b(?:not|no|never|without|neither|nor)\b|n't\b", re.I)
_CLAUSE = re.compile(r"[;,.:!?]|\b(?:and|but|while|whereas|as)\b", re.I)
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
    """The FACS table's muscle names ("depressor anguli oris" is not a movement down)."""
    names = {k.strip() for a in AUS.values() for mu in a.muscles for k in muscle_keys(mu)}
    keys = sorted((n for n in names if n), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keys) + r")\b", re.I)


def movements(text: str) -> list[Movement]:
    """The movements ``text`` claims: in each clause without a negation, each direction word
    paired with the nearest part named before it in the same sentence part ("the lip corners are
    pulled up and outward" → (lip corner, up), (lip corner, out)). A direction with no part
    before it ("raised brows" reads as adjective + noun) takes the first part after it. Muscle
    names are read as names, not words."""
    found: list[Movement] = []
    text = _muscle_re().sub("muscle", text)
    for sentence in re.split(r"[;.!?]", text):
        subject: str | None = None
        for clause in re.split(r",|\b(?:but|while|whereas)\b", sentence, flags=re.I):
            if _NEGATION.search(clause):
                subject = None
                continue
            parts = parts_in(clause)
            for pos, d in _directions_in(clause, parts):
                before = [p for q, _, p in parts if q < pos]
                after = [p for q, _, p in parts if q > pos]
                part = before[-1] if before else (subject if subject else
                                                  (after[0] if after else None))
                if part is not None:
                    found.append(Movement(part, d))
            if parts:
                subject = parts[-1][2]
    return list(dict.fromkeys(found))


def related(a: str, b: str) -> bool:
    return a == b or _PARENT.get(a) == b or _PARENT.get(b) == a
