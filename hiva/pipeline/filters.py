"""Parsing LLM replies into candidate descriptions, and the quality filters.

``parse_reply`` strips preambles, numbering and quotes and splits list replies into items;
``check`` returns None for a kept description or the reason it is dropped. Every drop is counted
by reason in the corpus manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hiva.config import check_config
from hiva.facs import AUS

_PREAMBLE = re.compile(
    r"^(sure|certainly|of course|okay|ok|here (is|are)|below (is|are)|the following)\b.*?[:!.]\s*$",
    re.I,
)
_BULLET = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,2}[.)\]:]|\(?[a-z][.)]\s)\s*", re.I)
_INLINE_NUM = re.compile(r"\s(?=\(?\d{1,2}[.)]\s+[A-Z])")
_LABEL = re.compile(r"^(description|note|answer)\s*\d*\s*[:\-]\s*", re.I)
_AU_REF = re.compile(r"\b(?:AU|action\s+unit)\s*[-#]?\s*(\d{1,2})\b", re.I)
_REFUSAL = re.compile(
    r"\b(as an ai|i('m| am) (sorry|unable|not able)|i can(not|'t) (help|provide|assist)|"
    r"language model)\b",
    re.I,
)
_OFF_FACE = re.compile(
    r"\b(chest|pectoral\w*|arms?|legs?|shoulders?|hands?|fingers?|feet|foot|stomach|abdomen|"
    r"knees?|elbows?|toes?|spine|back muscles?)\b",
    re.I,
)
_CLAUSE = re.compile(r"[;,.:]")
_WORD = re.compile(r"[A-Za-z']+")
_STOP_EN = frozenset(
    "the a an and or of to in on at is are be with when as by that this it its from their "
    "which while into up down out each".split()
)
# AU names that are ordinary phrases ("the lips part", "the jaw drops"): never a contamination cue.
_GENERIC_NAMES = frozenset(
    {
        "lips part",
        "jaw drop",
        "eyes closed",
        "mouth stretch",
        "lip suck",
        "blink",
        "wink",
        "dimpler",
    }
)


@dataclass(frozen=True)
class FilterConfig:
    min_words: int = 5
    max_words: int = 60
    max_repeat_ratio: float = 0.45  # max share of repeated word bigrams
    min_english_ratio: float = 0.9  # share of ASCII letters among letters
    min_fact_words: int = 2  # content words shared with the AU's FACS facts (grounding)
    drop_other_au_names: bool = True

    def __post_init__(self):
        check_config("generate", [
            (self.min_words >= 1, f"min_words must be ≥ 1, got {self.min_words}"),
            (self.max_words >= self.min_words,
             f"max_words must be ≥ min_words ({self.min_words}), got {self.max_words}"),
            (0.0 <= self.max_repeat_ratio <= 1.0,
             f"max_repeat_ratio must be in [0, 1], got {self.max_repeat_ratio}"),
            (0.0 <= self.min_english_ratio <= 1.0,
             f"min_english_ratio must be in [0, 1], got {self.min_english_ratio}"),
            (self.min_fact_words >= 0, f"min_fact_words must be ≥ 0, got {self.min_fact_words}"),
        ])


def parse_reply(reply: str) -> list[str]:
    """Split a reply into candidate descriptions (one per line / list item / JSON array item)."""
    text = reply.strip()
    if text.startswith(("{", "[")):
        try:
            obj = json.loads(text)
            items = obj.get("descriptions", []) if isinstance(obj, dict) else obj
            return [str(x).strip() for x in items if isinstance(x, str) and x.strip()]
        except (json.JSONDecodeError, AttributeError):
            pass
    out = []
    for line in text.splitlines():
        for part in _INLINE_NUM.split(line):
            s = part.strip()
            if not s or _PREAMBLE.match(s):
                continue
            s = _BULLET.sub("", s, count=1)
            s = _LABEL.sub("", s).strip().strip('"“”').strip()
            if s:
                out.append(s)
    return out


def tidy(text: str) -> str:
    """Trim an unfinished trailing clause; capitalise; end with a full stop."""
    t = " ".join(text.split())
    if t and t[-1] not in ".!?":
        cut = max(t.rfind(". "), t.rfind("; "))
        t = t[: cut + 1] if cut > 0 else t
        t = t.rstrip(";,: ")
        if t and t[-1] not in ".!?":
            t += "."
    return t[:1].upper() + t[1:]


_FACT_WORDS: dict[int, frozenset[str]] = {}


def fact_words(au: int) -> frozenset[str]:
    if au not in _FACT_WORDS:
        a = AUS[au]
        words = " ".join([a.name, *a.muscles, a.region, *a.appearance]).lower()
        _FACT_WORDS[au] = frozenset(
            w for w in _WORD.findall(words) if len(w) > 3 and w not in _STOP_EN
        )
    return _FACT_WORDS[au]


def _other_name_pattern(au: int) -> re.Pattern | None:
    names = [
        a.name.lower()
        for n, a in AUS.items()
        if n != au
        and a.name.lower() not in _GENERIC_NAMES
        and a.name.lower() != AUS[au].name.lower()
    ]
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")", re.I)


# "the jaw drop action": a generic AU name used as a name.
_GENERIC_ACTION = re.compile(
    r"\b(" + "|".join(sorted(_GENERIC_NAMES)) + r")\s+(action|unit)\b", re.I
)
_NAME_PATTERNS: dict[int, re.Pattern | None] = {}


def check(text: str, au: int, cfg: FilterConfig) -> str | None:
    """None if ``text`` is a usable description of ``au``, else the drop reason."""
    if not text.strip():
        return "empty"
    words = _WORD.findall(text)
    if len(words) < cfg.min_words:
        return "too_short"
    if len(words) > cfg.max_words:
        return "too_long"
    if _REFUSAL.search(text):
        return "refusal"
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isascii() for c in letters) / len(letters) < cfg.min_english_ratio:
        return "non_english"
    low = [w.lower() for w in words]
    if sum(w in _STOP_EN for w in low) == 0 and len(low) >= 8:
        return "non_english"
    bigrams = list(zip(low, low[1:]))
    if bigrams and 1 - len(set(bigrams)) / len(bigrams) > cfg.max_repeat_ratio:
        return "repeated_tokens"
    if any(low[i] == low[i + 1] and len(low[i]) > 2 for i in range(len(low) - 1)):
        return "repeated_tokens"
    clauses = [c.strip().lower() for c in _CLAUSE.split(text) if len(c.split()) >= 3]
    if len(clauses) != len(set(clauses)):
        return "repeated_clause"
    for m in _AU_REF.finditer(text):
        if int(m.group(1)) != au:
            return "other_au"
    if cfg.drop_other_au_names:
        if au not in _NAME_PATTERNS:
            _NAME_PATTERNS[au] = _other_name_pattern(au)
        pat = _NAME_PATTERNS[au]
        if pat is not None and pat.search(text):
            return "other_au"
        m = _GENERIC_ACTION.search(text)
        if m and m.group(1).lower() != AUS[au].name.lower():
            return "other_au"
    if _OFF_FACE.search(text):
        return "off_face"
    if cfg.min_fact_words and len(set(low) & fact_words(au)) < cfg.min_fact_words:
        return "ungrounded"
    return None
