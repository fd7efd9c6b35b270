"""AU regions read from the descriptions: where the text says an AU shows on the face.

The movement reader (``hiva.movements``) turns each clause of a description into (face part,
direction) movements. Each face part it knows has a place on the face (``PART_DISCS``: discs
around the same landmark anchors as ``hiva.facs.REGIONS``, in eye distances); an AU's *text
region* is the union of the places of the parts its descriptions move most often: every part
moved in at least ``min_share`` of them, at most ``max_parts`` parts, most frequent first (the
most frequent one when none reaches the share; no region when no description moves a part). So
a corpus that says "the inner brows rise" gives AU1 the inner-brow discs whatever the FACS
table says, and the same corpus shuffled across AUs moves them to the AU that got those
descriptions. ``map_prior_source: corpus`` (``hiva.model.ModelConfig``) places the region prior
this way. Imports neither torch nor numpy.
"""

from __future__ import annotations

from collections import Counter

from hiva.facs import RegionDisc, parse_regions
from hiva.movements import movements

# Where each face part of hiva.movements is: "<part>: <anchor> <out>,<down> r<radius>; …"
# (the grammar of hiva.facs's region table; a bare anchor name means both sides).
_PART_TABLE = {
    "inner brow": "brow_inner 0,-0.3 r0.35",
    "outer brow": "brow_outer -0.15,-0.25 r0.35",
    "brow": "brow_mid 0,-0.2 r0.4",
    "forehead": "brow_mid 0,-0.55 r0.4",
    "upper lid": "eye_upper 0,-0.05 r0.25",
    "lower lid": "eye_lower 0,0 r0.25",
    "eyelid": "eye 0,0 r0.3",
    "eye": "eye 0,0 r0.3",
    "cheek": "eye 0.1,0.5 r0.35",
    "nose": "nose_root 0,0.35 r0.32",
    "nostril": "nose_wing 0,0 r0.22",
    "lip corner": "mouth_corner 0,0 r0.28",
    "upper lip": "lip_upper 0,0 r0.3",
    "lower lip": "lip_lower 0,0 r0.3",
    "lip": "mouth 0,0 r0.38",
    "mouth": "mouth 0,0 r0.38",
    "chin": "chin 0,-0.15 r0.35",
    "jaw": "chin 0,0 r0.45",
}
PART_DISCS: dict[str, tuple[RegionDisc, ...]] = {
    part: parse_regions(f"0: {spec}")[0] for part, spec in _PART_TABLE.items()}


def part_shares(texts) -> dict[str, float]:
    """{face part: the share of ``texts`` that move it}, most frequent first."""
    texts = list(texts)
    counts: Counter = Counter()
    for t in texts:
        counts.update({m.part for m in movements(str(t))})
    n = max(len(texts), 1)
    return {p: c / n for p, c in counts.most_common()}


def text_parts(texts, min_share: float = 0.25, max_parts: int = 2) -> list[str]:
    """The face parts of one AU's region: those moved in ≥ ``min_share`` of its ``texts``, at
    most ``max_parts``, most frequent first; the most frequent one when none reaches the share."""
    shares = [p for p in part_shares(texts).items() if p[0] in PART_DISCS]
    if not shares:
        return []
    kept = [p for p, s in shares if s >= min_share][:max_parts]
    return kept or [shares[0][0]]


def text_regions(texts_by_au: dict, min_share: float = 0.25, max_parts: int = 2
                 ) -> dict[int, tuple[RegionDisc, ...]]:
    """{au: its text region's discs} (the shape of ``hiva.facs.REGIONS``) from {au: texts}."""
    return {int(a): tuple(d for p in text_parts(t, min_share, max_parts) for d in PART_DISCS[p])
            for a, t in texts_by_au.items()}


def max_text_discs(max_parts: int = 2) -> int:
    """The most discs a text region can have (its ``max_parts`` largest parts)."""
    return sum(sorted((len(d) for d in PART_DISCS.values()), reverse=True)[:max_parts])
