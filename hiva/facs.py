"""The FACS Action Unit table as data, in our own words (``_TABLE``, read into ``AUS``), the named
AU sets and ``parse_aus``.

Sources of the facts: the Facial Action Coding System (Ekman, Friesen & Hager, 2002) as summarised
in the public literature. Descriptions here are paraphrases written for this project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiva.errors import HivaError


@dataclass(frozen=True)
class ActionUnit:
    number: int
    name: str
    muscles: tuple[str, ...]
    region: str  # brows | eyes | nose | cheeks | mouth | chin | jaw | head
    appearance: tuple[str, ...]  # visible cues, each a short clause
    often_with: tuple[int, ...] = ()  # AUs it commonly co-occurs with (emotion prototypes)

    @property
    def code(self) -> str:
        return f"AU{self.number}"

    @property
    def fact_text(self) -> str:
        """Its name, muscles, region and cues as one text (the words its facts use)."""
        return " ".join([self.name, *self.muscles, self.region, *self.appearance])


def muscle_keys(muscle: str) -> list[str]:
    """Searchable names of one muscle entry of the table: the base name and its alternative in
    () ("depressor anguli oris (triangularis)" → both; "relaxation of mentalis" → mentalis)."""
    m = muscle.lower().replace("relaxation of ", "").replace(" relaxed", "")
    alt = re.findall(r"\(([^)]*)\)", m)
    base = re.sub(r"\([^)]*\)", "", m).split(",")[0].strip()
    return [k for k in [base, *alt] if k]


# The table, one block per AU, in the order of ``AUS``:
#   <number>. <name> (<region>; often with <AUs it commonly co-occurs with>)
#      muscles: <muscle>; <muscle>            (or the relaxation behind the action)
#      - <a visible cue, a short clause>      (one line each)
# Prompts are built from this text: an edit changes them, and every corpus generated after it.
_TABLE = """
1. Inner Brow Raiser (brows; often with 2, 4, 15)
   muscles: frontalis, pars medialis
   - the inner ends of the eyebrows are pulled upward
   - horizontal wrinkles appear in the centre of the forehead
   - the brows take an oblique, slanted shape

2. Outer Brow Raiser (brows; often with 1, 5, 26)
   muscles: frontalis, pars lateralis
   - the outer ends of the eyebrows are lifted
   - the lateral part of the brow arches upward
   - wrinkles may form above the outer brows

4. Brow Lowerer (brows; often with 7, 9, 17, 23)
   muscles: corrugator supercilii; depressor supercilii; procerus
   - the eyebrows are pulled down and drawn together
   - vertical furrows form between the brows
   - the eye opening narrows from above

5. Upper Lid Raiser (eyes; often with 1, 2, 26)
   muscles: levator palpebrae superioris
   - the upper eyelid is raised so more of the eyeball shows
   - white of the eye may become visible above the iris
   - the eyes look wide and staring

6. Cheek Raiser (cheeks; often with 12, 25)
   muscles: orbicularis oculi, pars orbitalis
   - the cheeks are lifted and bulge under the eyes
   - crow's-feet wrinkles radiate from the outer eye corners
   - the lower eyelid is pushed up and the eyes narrow

7. Lid Tightener (eyes; often with 4, 6, 23)
   muscles: orbicularis oculi, pars palpebralis
   - the eyelids tighten and the eye aperture narrows
   - the lower lid is raised and straightened
   - the eyes look squinting without cheek lift

9. Nose Wrinkler (nose; often with 4, 10, 17)
   muscles: levator labii superioris alaeque nasi
   - wrinkles appear along the sides and bridge of the nose
   - the nostrils are pulled upward
   - the upper lip rises slightly with the nose

10. Upper Lip Raiser (mouth; often with 9, 17, 25)
   muscles: levator labii superioris
   - the upper lip is drawn straight up
   - the nasolabial furrow deepens
   - the upper teeth may be exposed

11. Nasolabial Deepener (cheeks; often with 12, 15)
   muscles: zygomaticus minor
   - the skin beside the nose wings is pulled up and out
   - the upper part of the nasolabial furrow deepens
   - the upper lip is raised a little at its outer parts

12. Lip Corner Puller (mouth; often with 6, 25, 26)
   muscles: zygomaticus major
   - the lip corners are pulled up and outward toward the cheekbones
   - the mouth widens into a smile shape
   - the nasolabial furrow deepens and curves

13. Sharp Lip Puller (mouth; often with 6, 12)
   muscles: levator anguli oris (caninus)
   - the lip corners are pulled sharply upward
   - the cheeks puff beneath the lip corners
   - the upper lip narrows at its sides

14. Dimpler (mouth; often with 12, 17, 24)
   muscles: buccinator
   - the lip corners are tightened and pulled inward
   - dimples or wrinkles form beside the lip corners
   - the lips are stretched slightly sideways and flattened

15. Lip Corner Depressor (mouth; often with 1, 4, 17)
   muscles: depressor anguli oris (triangularis)
   - the lip corners are pulled downward
   - the mouth takes a downturned, sad shape
   - the skin below the lip corners bulges or wrinkles

16. Lower Lip Depressor (mouth; often with 10, 25, 26)
   muscles: depressor labii inferioris
   - the lower lip is pulled down and slightly outward
   - the lower teeth may be exposed
   - the chin skin is stretched downward

17. Chin Raiser (chin; often with 4, 15, 24)
   muscles: mentalis
   - the chin boss is pushed upward
   - the lower lip is pushed up and may protrude
   - the chin skin wrinkles into a dimpled, orange-peel texture

18. Lip Pucker (mouth; often with 17, 22)
   muscles: incisivii labii superioris; incisivii labii inferioris
   - the lips are pushed forward and gathered
   - the mouth opening becomes small and rounded
   - fine vertical lines appear on the lips

19. Tongue Show (mouth; often with 25, 26)
   muscles: genioglossus; relaxation of orbicularis oris
   - the tongue is pushed forward between the lips
   - the tip of the tongue shows in front of the teeth
   - the lips part around the protruding tongue

20. Lip Stretcher (mouth; often with 1, 2, 4, 5, 25)
   muscles: risorius; platysma
   - the lip corners are pulled straight out toward the ears
   - the mouth is elongated and flattened horizontally
   - the skin beyond the lip corners is stretched

22. Lip Funneler (mouth; often with 18, 25)
   muscles: orbicularis oris
   - the lips are flared outward into a funnel
   - the lips push forward and the teeth may show
   - the mouth forms a trumpet-like shape

23. Lip Tightener (mouth; often with 4, 7, 24)
   muscles: orbicularis oris
   - the lips are tightened and their red parts narrow
   - the lip margins roll slightly inward and look thin
   - small bulges may form around the tense lips

24. Lip Pressor (mouth; often with 17, 23)
   muscles: orbicularis oris
   - the closed lips are pressed firmly together
   - the lips narrow and the skin around them bulges
   - the lower lip is pushed against the upper lip

25. Lips Part (mouth; often with 12, 26, 10)
   muscles: depressor labii inferioris; relaxation of mentalis; relaxation of orbicularis oris
   - the lips separate slightly
   - the teeth or the inside of the mouth may become visible
   - the jaw itself need not drop

26. Jaw Drop (jaw; often with 25, 5, 1, 2)
   muscles: masseter relaxed; temporalis relaxed; internal pterygoid relaxed
   - the jaw lowers and the mouth opens loosely
   - the space between the teeth widens
   - the lower face lengthens without stretching the lips

27. Mouth Stretch (jaw; often with 1, 2, 5)
   muscles: pterygoids; digastric
   - the mouth is opened wide by actively pulling the jaw down
   - the lips and cheeks are stretched tight
   - the mouth opening becomes tall and oval

28. Lip Suck (mouth; often with 17, 24)
   muscles: orbicularis oris
   - the lips are sucked inward over the teeth
   - the red parts of the lips disappear from view
   - the skin around the mouth is drawn in

32. Lip Bite (mouth; often with 25, 17)
   muscles: masseter; temporalis
   - the teeth close on one of the lips
   - the bitten lip is pulled in and partly hidden
   - the skin beside the bitten lip bunches

38. Nostril Dilator (nose; often with 9, 10, 26)
   muscles: nasalis, pars alaris
   - the nostrils flare outward
   - the nostril openings widen and round
   - the wings of the nose lift away from the cheeks

39. Nostril Compressor (nose; often with 4, 9)
   muscles: nasalis, pars transversa; depressor septi
   - the nostrils are narrowed and pressed in
   - the nostril openings become slit-like
   - the wings of the nose draw toward the septum

43. Eyes Closed (eyes; often with 6, 7)
   muscles: relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis
   - the upper eyelids droop until the eyes are closed
   - the eyelids rest together without squeezing
   - no tension lines form around the eyes

45. Blink (eyes; often with 5)
   muscles: relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis
   - the eyes close and reopen quickly
   - the eyelids meet for a brief moment
   - the eye region returns to neutral at once

46. Wink (eyes; often with 6, 12)
   muscles: orbicularis oculi
   - one eye closes briefly while the other stays open
   - the closure is one-sided and deliberate
   - the cheek on the winking side may lift a little
"""

_HEAD = re.compile(r"^(\d+)\. (.+) \((\w+); often with ([\d, ]+)\)$")


def _parse_table(text: str) -> dict[int, ActionUnit]:
    """``_TABLE`` as ``{number: ActionUnit}``, in its order."""
    out = {}
    for block in text.strip().split("\n\n"):
        head, muscles, *cues = [ln.strip() for ln in block.splitlines()]
        m = _HEAD.match(head)
        if not (m and muscles.startswith("muscles: ") and all(c.startswith("- ") for c in cues)):
            raise ValueError(f"malformed FACS table block: {head!r}")
        n = int(m.group(1))
        out[n] = ActionUnit(n, m.group(2), tuple(muscles.removeprefix("muscles: ").split("; ")),
                            m.group(3), tuple(c.removeprefix("- ") for c in cues),
                            tuple(int(x) for x in m.group(4).split(", ")))
    return out


AUS: dict[int, ActionUnit] = _parse_table(_TABLE)

# Where each AU shows on the face, as discs around face landmarks (after the AU centres of
# EAC-Net/JAA-Net, in our own words and numbers), read into ``REGIONS``:
#   <number>: <anchor> <out>,<down> r<radius>; <anchor> ...
# An anchor is a point every landmark scheme names (``ANCHORS``); a bare name
# like ``brow_inner`` means both sides (``brow_inner_r`` and ``brow_inner_l``). Offsets and radii
# are in units of the distance between the eye centres; ``out`` points away from the face's
# midline, ``down`` from the brows toward the chin. An AU missing here has no region.
_REGION_TABLE = """
1: brow_inner 0,-0.3 r0.35
2: brow_outer -0.15,-0.25 r0.35
4: brow_inner 0,0 r0.3; brow_mid 0,0 r0.22; nose_root 0,-0.25 r0.25
5: eye_upper 0,-0.05 r0.25
6: eye 0.1,0.5 r0.35; eye_outer 0.2,0 r0.2
7: eye_lower 0,0 r0.25
9: nose_root 0,0.35 r0.32; nose_wing 0,-0.05 r0.2
10: lip_upper 0,-0.1 r0.3; nose_wing 0,0.1 r0.2
11: nose_wing 0.2,0.35 r0.25
12: mouth_corner 0,0 r0.28
13: mouth_corner 0,-0.05 r0.25
14: mouth_corner 0.1,0 r0.25
15: mouth_corner 0,0.15 r0.28
16: lip_lower 0,0.05 r0.3
17: lip_lower 0,0.3 r0.35
18: mouth 0,0 r0.35
19: mouth 0,0.05 r0.35
20: mouth_corner 0.15,0.05 r0.3
22: mouth 0,0 r0.35
23: mouth 0,0 r0.35
24: mouth 0,0 r0.38
25: mouth 0,0 r0.35
26: lip_lower 0,0.3 r0.45
27: mouth 0,0.1 r0.45
28: mouth 0,0 r0.35
32: mouth 0,0.05 r0.35
38: nose_wing 0,0 r0.22
39: nose_wing 0,0 r0.22
43: eye 0,0 r0.3
45: eye 0,0 r0.3
46: eye 0,0 r0.3
"""


# The points a region may be anchored on; ``_r``/``_l`` are the subject's right and left.
ANCHORS: tuple[str, ...] = (
    "eye_r", "eye_l", "eye_upper_r", "eye_upper_l", "eye_lower_r", "eye_lower_l",
    "eye_outer_r", "eye_outer_l",
    "brow_inner_r", "brow_inner_l", "brow_mid_r", "brow_mid_l", "brow_outer_r", "brow_outer_l",
    "nose_root", "nose_tip", "nose_wing_r", "nose_wing_l",
    "mouth_corner_r", "mouth_corner_l", "lip_upper", "lip_lower", "mouth", "chin",
)


@dataclass(frozen=True)
class RegionDisc:
    anchor: str  # a landmark name, ``ANCHORS`` (``_r``/``_l`` spelt out)
    out: float  # offset away from the midline, in eye distances
    down: float  # offset toward the chin, in eye distances
    radius: float  # in eye distances


def parse_regions(text: str) -> dict[int, tuple[RegionDisc, ...]]:
    out: dict[int, tuple[RegionDisc, ...]] = {}
    for line in text.strip().splitlines():
        num, _, rest = line.partition(":")
        discs = []
        for part in rest.split(";"):
            m = re.fullmatch(r"\s*(\w+) (-?[\d.]+),(-?[\d.]+) r([\d.]+)\s*", part)
            if not m:
                raise ValueError(f"malformed region entry for AU{num}: {part!r}")
            name = m.group(1)
            sides = [name] if name in ANCHORS else [f"{name}_r", f"{name}_l"]
            if any(s not in ANCHORS for s in sides):
                raise ValueError(f"AU{num}: unknown landmark {name!r}")
            discs += [RegionDisc(s, float(m.group(2)), float(m.group(3)), float(m.group(4)))
                      for s in sides]
        out[int(num)] = tuple(discs)
    return out


REGIONS: dict[int, tuple[RegionDisc, ...]] = parse_regions(_REGION_TABLE)

AU_SETS: dict[str, tuple[int, ...]] = {
    "bp4d": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "disfa": (1, 2, 4, 6, 9, 12, 25, 26),
    # OpenGraphAU's 27 whole-face AUs (its hybrid of six datasets), in its output order
    "opengraphau": (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24,
                    25, 26, 27, 32, 38, 39),
    "all": tuple(sorted(AUS)),
}

INTENSITIES = {
    "A": "trace",
    "B": "slight",
    "C": "marked",
    "D": "severe",
    "E": "maximum",
}


def parse_aus(spec: str | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """Resolve ``bp4d``, ``disfa``, ``all`` or a list like ``1,2,4,12`` / ``AU1,AU12``."""
    if isinstance(spec, (list, tuple)):
        items = [str(x) for x in spec]
    else:
        key = spec.strip().lower()
        if key in AU_SETS:
            return AU_SETS[key]
        items = [s for s in key.replace(" ", "").split(",") if s]
    out: list[int] = []
    for s in items:
        s2 = s.lower().removeprefix("au")
        if not s2.isdigit() or int(s2) not in AUS:
            raise HivaError(
                f"unknown AU {s!r}; use a set ({', '.join(AU_SETS)}) or numbers from "
                f"{', '.join(map(str, sorted(AUS)))}, e.g. --aus 1,2,4,12"
            )
        if int(s2) not in out:
            out.append(int(s2))
    if not out:
        raise HivaError("empty AU list; pass --aus bp4d, disfa, all, or e.g. --aus 1,2,4,12")
    return tuple(out)


def au_column(n: int) -> str:
    """Column name used in manifests and prediction tables: ``AU01``."""
    return f"AU{n:02d}"
