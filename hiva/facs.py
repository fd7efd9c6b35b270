"""The FACS Action Unit table as data (``hiva.facs_table``'s text, read into ``AUS``), where each
AU shows on the face (``REGIONS``), the named AU sets and ``parse_aus``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hiva.errors import HivaError
from hiva.facs_table import TABLE


@dataclass(frozen=True)
class ActionUnit:
    number: int
    name: str
    muscles: tuple[str, ...]
    region: str  # brows | eyes | nose | cheeks | mouth | chin | jaw | head
    appearance: tuple[str, ...]  # visible cues, each a short clause
    often_with: tuple[int, ...] = ()  # AUs it commonly co-occurs with (emotion prototypes)
    unlike: int | None = None  # its nearest neighbour, the AU it is most easily taken for
    contrast: str = ""  # what tells it from ``unlike``, one clause
    cue_words: tuple[str, ...] = ()  # patterns of the words that say so
    openings: tuple[str, ...] = ()  # ways to name the part that moves (prompts start notes so)

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


_HEAD = re.compile(r"^(\d+)\. (.+) \((\w+); often with ([\d, ]+)\)$")
_UNLIKE = re.compile(r"^unlike (\d+): (.+)$")


def _parse_table(text: str) -> dict[int, ActionUnit]:
    """``hiva.facs_table.TABLE`` as ``{number: ActionUnit}``, in its order."""
    out = {}
    for block in text.strip().split("\n\n"):
        head, muscles, unlike, words, *cues = [ln.strip() for ln in block.splitlines()]
        opens = cues.pop(0).removeprefix("opens with: ") if cues[0].startswith("opens") else ""
        m, u = _HEAD.match(head), _UNLIKE.match(unlike)
        if not (m and u and muscles.startswith("muscles: ") and words.startswith("cue words: ")
                and all(c.startswith("- ") for c in cues)):
            raise ValueError(f"malformed FACS table block: {head!r}")
        n = int(m.group(1))
        out[n] = ActionUnit(n, m.group(2), tuple(muscles.removeprefix("muscles: ").split("; ")),
                            m.group(3), tuple(c.removeprefix("- ") for c in cues),
                            tuple(int(x) for x in m.group(4).split(", ")), int(u.group(1)),
                            u.group(2), tuple(w.strip() for w in
                                              words.removeprefix("cue words: ").split(" | ")),
                            tuple(o.strip() for o in opens.split(" | ") if o.strip()))
    return out


AUS: dict[int, ActionUnit] = _parse_table(TABLE)

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
