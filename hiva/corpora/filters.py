"""Parsing LLM replies into candidate descriptions, and the quality filters.

``parse_reply`` strips preambles, numbering and quotes and splits list replies into items;
``check`` returns None for a kept description or the reason it is dropped. Every drop is counted
by reason (and by AU) in the corpus manifest.

Beyond form (length, language, repetition, naming other AUs), ``fact_checks`` reads what a
description says:

- ``unknown_words``: a word in no English dictionary (pyspellchecker's word-frequency list) and
  not in the FACS table's vocabulary (muscle names, cues): invented words like "browcorpse";
- ``template_residue``: a field label of the prompt page ("Muscle:", "Cues:"), a phrase of its
  instructions, or one of its example frames with a word changed ("Seen from the inside" for the
  page's "Seen from the outside"), all read from the built-in templates;
- ``repeated_clause``: two clauses of one description that are the same under small edits;
- the description verifier (``hiva.corpora.verify``): every clause verified against the AU's
  FACS facts or harmless, and a word that tells the AU from its nearest neighbour; its reasons
  (``verify.REASONS``) are the drop reasons.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from hiva.config import check_config
from hiva.corpora.verify import verify
from hiva.facs import AUS
from hiva.movements import PARTS
from hiva.prompts.render import builtin_templates

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
    r"knees?|elbows?|toes?|spine|back muscles?|necks?|throats?)\b",
    re.I,
)
_CROWS_FEET = re.compile(r"\bcrow'?s[- ]feet\b", re.I)
_CLAUSE = re.compile(r"[;,.:]")
_COLON = re.compile(r"\w:\s")  # a label ("This can be seen with: the cheeks"): no note has one
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
    max_clause_similarity: float = 0.8  # two clauses this alike (difflib ratio): repeated
    fact_checks: bool = True  # unknown words, template residue, movements against the facts

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
            (0.0 < self.max_clause_similarity <= 1.0,
             f"max_clause_similarity must be in (0, 1], got {self.max_clause_similarity}"),
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
        words = a.fact_text.lower()
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
    if any(low[i] == low[i + 2] and low[i + 1] in ("and", "or") for i in range(len(low) - 2)):
        return "repeated_tokens"  # "thin and thin", "down and down"
    for clause in _CLAUSE.split(text):  # "the upper lip part is lined up with the upper lip part"
        cw = _WORD.findall(clause.lower())
        if len(_grams(cw, 4)) < len(cw) - 3:
            return "repeated_tokens"
    if _repeated_clause(text, cfg.max_clause_similarity):
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
    if _OFF_FACE.search(_CROWS_FEET.sub(" ", text)):  # crow's-feet are AU6's, not feet
        return "off_face"
    if cfg.min_fact_words and len(set(low) & fact_words(au)) < cfg.min_fact_words:
        return "ungrounded"
    if cfg.fact_checks:
        if unknown_words(text):
            return "unknown_words"
        if template_residue(text) or _COLON.search(text):
            return "template_residue"

        return verify(text, au).reason
    return None


def _repeated_clause(text: str, max_similarity: float) -> bool:
    """Two clauses (of ≥ 3 words) that are equal, or alike at ``max_similarity`` or more
    (difflib's ratio on their words: "the brow ridges take a slanted shape" / "the brow ridges
    take a crescent shape", 0.86)."""
    clauses = [_WORD.findall(c.lower()) for c in _CLAUSE.split(text)]
    clauses = [c for c in clauses if len(c) >= 3]
    for i in range(len(clauses)):
        for j in range(i + 1, len(clauses)):
            a, b = clauses[i], clauses[j]
            if a == b or SequenceMatcher(None, a, b, autojunk=False).ratio() >= max_similarity:
                return True
    return False


@lru_cache(maxsize=1)
def _speller():
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@lru_cache(maxsize=1)
def facs_vocabulary() -> frozenset[str]:
    """Every word of the FACS table (names, muscles, regions, cues) and of the movement reader's
    part names: words a description may use that a general dictionary may lack."""
    text = " ".join(a.fact_text for a in AUS.values())
    text += " " + " ".join(re.sub(r"[^A-Za-z ]", " ", rx) for _, rx in PARTS)
    return frozenset(w.lower() for w in _WORD.findall(text))


def unknown_words(text: str) -> list[str]:
    """Words of ``text`` in neither pyspellchecker's English word list nor the FACS vocabulary
    (hyphenated words are split; one- and two-letter words and possessives are let through)."""
    words = {w.lower().removesuffix("'s").strip("'") for w in _WORD.findall(text)}
    words = {w for w in words if len(w) > 2 and w not in facs_vocabulary()}
    return sorted(_speller().unknown(words)) if words else []


@lru_cache(maxsize=1)
def _residue_tables() -> tuple[re.Pattern | None, frozenset[tuple[str, ...]],
                               tuple[tuple[str, ...], ...]]:
    """From the built-in templates: their field labels ("Muscle:"), the 4-word phrases of their
    instructions that the FACS table does not also use, and their example notes' openers."""
    jinja = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
    facts = " ".join(a.fact_text for a in AUS.values()).lower()
    fact_grams = _grams(_WORD.findall(facts), 4)
    labels, grams, frames = set(), set(), []
    for t in builtin_templates():
        src = t.source
        # the note's openers: the ``opener`` macro where a template has one, else ``example``
        ex = (re.search(r"{%-?\s*macro opener.*?%}(.*?){%-?\s*endmacro", src, re.S)
              or re.search(r"{%-?\s*macro example.*?%}(.*?){%-?\s*endmacro", src, re.S))
        if ex:
            for branch in re.split(r"{%-?\s*(?:if|elif|else)[^%]*%}", ex.group(1)):
                head = jinja.split(branch.strip())[0]
                if not head[:1].isalpha():  # a continuation ("; also check that"), not an opener
                    continue
                words = _WORD.findall(head.lower())
                if len(words) >= 3:
                    frames.append(tuple(words))
            src = src.replace(ex.group(0), " ")
        static = jinja.sub(" ", src)
        # "Muscle:", "Often seen with:": a capitalised phrase of up to three words before a colon
        labels.update(m.lower() for m in re.findall(r"\b([A-Z][a-z]+(?: [a-z]+){0,2}):", static))
        grams |= _grams(_WORD.findall(static.lower()), 4) - fact_grams
    label_re = (re.compile(r"\b(" + "|".join(re.escape(x) for x in sorted(labels, key=len,
                                                                          reverse=True))
                           + r"):", re.I) if labels else None)
    return label_re, frozenset(grams), tuple(frames)


def cut_at_label(text: str) -> str:
    """``text`` up to the first field label of the prompt page ("… are pulled upward. Cues: the
    brows …" → "… are pulled upward."): a completion that ran on into the page's next record."""
    label_re = _residue_tables()[0]
    m = label_re.search(text) if label_re is not None else None
    return text[:m.start()].rstrip() if m and m.start() > 0 else text


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def template_residue(text: str) -> str | None:
    """What of the prompt page ``text`` carries: a field label, a phrase of the instructions, or
    an example frame with a word changed; None when clean."""
    label_re, grams, frames = _residue_tables()
    if label_re is not None and (m := label_re.search(text)):
        return m.group(0)
    words = _WORD.findall(text.lower())
    hit = _grams(words, 4) & grams
    if hit:
        return " ".join(sorted(hit)[0])
    for f in frames:
        n = len(f)
        head = tuple(words[:n])
        if len(head) == n and head[:n - 1] == f[:n - 1] and head != f:
            return " ".join(head)
    return None


# The checks ``hiva corpus stats`` runs on every row of a corpus, each on its own (``check``
# stops at the first failure): name → what it found in the row, None when it passes.
ROW_CHECKS = ("unknown_words", "template_residue", "repeated_clause", "facts", "cue")


def each_check(text: str, au: int, cfg: FilterConfig | None = None) -> dict[str, str | None]:
    """What each of ``ROW_CHECKS`` finds in ``text`` (None: passes): the unknown words, the
    residue, "repeated", the verifier's reason with its finding ("describes_other_au: jaw down
    (AU26) in …"), and "none (unlike AUn)" when no word tells the AU from its neighbour."""
    cfg = cfg or FilterConfig()
    v = verify(text, au)
    facts = v.reason if v.reason != "no_distinguishing_cue" else None
    return {
        "unknown_words": ", ".join(unknown_words(text)) or None,
        "template_residue": template_residue(text),
        "repeated_clause": "repeated" if _repeated_clause(text, cfg.max_clause_similarity)
        else None,
        "facts": f"{facts}: {v.why}" if facts else None,
        "cue": None if v.cue is not None else f"none (unlike AU{AUS[au].unlike})",
    }
