"""The FACS Action Unit table as data, in our own words, and the named AU sets.

Sources of the facts: the Facial Action Coding System (Ekman, Friesen & Hager, 2002) as summarised
in the public literature. Descriptions here are paraphrases written for this project.
"""

from __future__ import annotations

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


AUS: dict[int, ActionUnit] = {
    a.number: a
    for a in [
        ActionUnit(
            1,
            "Inner Brow Raiser",
            ("frontalis, pars medialis",),
            "brows",
            (
                "the inner ends of the eyebrows are pulled upward",
                "horizontal wrinkles appear in the centre of the forehead",
                "the brows take an oblique, slanted shape",
            ),
            (2, 4, 15),
        ),
        ActionUnit(
            2,
            "Outer Brow Raiser",
            ("frontalis, pars lateralis",),
            "brows",
            (
                "the outer ends of the eyebrows are lifted",
                "the lateral part of the brow arches upward",
                "wrinkles may form above the outer brows",
            ),
            (1, 5, 26),
        ),
        ActionUnit(
            4,
            "Brow Lowerer",
            ("corrugator supercilii", "depressor supercilii", "procerus"),
            "brows",
            (
                "the eyebrows are pulled down and drawn together",
                "vertical furrows form between the brows",
                "the eye opening narrows from above",
            ),
            (7, 9, 17, 23),
        ),
        ActionUnit(
            5,
            "Upper Lid Raiser",
            ("levator palpebrae superioris",),
            "eyes",
            (
                "the upper eyelid is raised so more of the eyeball shows",
                "white of the eye may become visible above the iris",
                "the eyes look wide and staring",
            ),
            (1, 2, 26),
        ),
        ActionUnit(
            6,
            "Cheek Raiser",
            ("orbicularis oculi, pars orbitalis",),
            "cheeks",
            (
                "the cheeks are lifted and bulge under the eyes",
                "crow's-feet wrinkles radiate from the outer eye corners",
                "the lower eyelid is pushed up and the eyes narrow",
            ),
            (12, 25),
        ),
        ActionUnit(
            7,
            "Lid Tightener",
            ("orbicularis oculi, pars palpebralis",),
            "eyes",
            (
                "the eyelids tighten and the eye aperture narrows",
                "the lower lid is raised and straightened",
                "the eyes look squinting without cheek lift",
            ),
            (4, 6, 23),
        ),
        ActionUnit(
            9,
            "Nose Wrinkler",
            ("levator labii superioris alaeque nasi",),
            "nose",
            (
                "wrinkles appear along the sides and bridge of the nose",
                "the nostrils are pulled upward",
                "the upper lip rises slightly with the nose",
            ),
            (4, 10, 17),
        ),
        ActionUnit(
            10,
            "Upper Lip Raiser",
            ("levator labii superioris",),
            "mouth",
            (
                "the upper lip is drawn straight up",
                "the nasolabial furrow deepens",
                "the upper teeth may be exposed",
            ),
            (9, 17, 25),
        ),
        ActionUnit(
            11,
            "Nasolabial Deepener",
            ("zygomaticus minor",),
            "cheeks",
            (
                "the skin beside the nose wings is pulled up and out",
                "the upper part of the nasolabial furrow deepens",
                "the upper lip is raised a little at its outer parts",
            ),
            (12, 15),
        ),
        ActionUnit(
            12,
            "Lip Corner Puller",
            ("zygomaticus major",),
            "mouth",
            (
                "the lip corners are pulled up and outward toward the cheekbones",
                "the mouth widens into a smile shape",
                "the nasolabial furrow deepens and curves",
            ),
            (6, 25, 26),
        ),
        ActionUnit(
            13,
            "Sharp Lip Puller",
            ("levator anguli oris (caninus)",),
            "mouth",
            (
                "the lip corners are pulled sharply upward",
                "the cheeks puff beneath the lip corners",
                "the upper lip narrows at its sides",
            ),
            (6, 12),
        ),
        ActionUnit(
            14,
            "Dimpler",
            ("buccinator",),
            "mouth",
            (
                "the lip corners are tightened and pulled inward",
                "dimples or wrinkles form beside the lip corners",
                "the lips are stretched slightly sideways and flattened",
            ),
            (12, 17, 24),
        ),
        ActionUnit(
            15,
            "Lip Corner Depressor",
            ("depressor anguli oris (triangularis)",),
            "mouth",
            (
                "the lip corners are pulled downward",
                "the mouth takes a downturned, sad shape",
                "the skin below the lip corners bulges or wrinkles",
            ),
            (1, 4, 17),
        ),
        ActionUnit(
            16,
            "Lower Lip Depressor",
            ("depressor labii inferioris",),
            "mouth",
            (
                "the lower lip is pulled down and slightly outward",
                "the lower teeth may be exposed",
                "the chin skin is stretched downward",
            ),
            (10, 25, 26),
        ),
        ActionUnit(
            17,
            "Chin Raiser",
            ("mentalis",),
            "chin",
            (
                "the chin boss is pushed upward",
                "the lower lip is pushed up and may protrude",
                "the chin skin wrinkles into a dimpled, orange-peel texture",
            ),
            (4, 15, 24),
        ),
        ActionUnit(
            18,
            "Lip Pucker",
            ("incisivii labii superioris", "incisivii labii inferioris"),
            "mouth",
            (
                "the lips are pushed forward and gathered",
                "the mouth opening becomes small and rounded",
                "fine vertical lines appear on the lips",
            ),
            (17, 22),
        ),
        ActionUnit(
            20,
            "Lip Stretcher",
            ("risorius", "platysma"),
            "mouth",
            (
                "the lip corners are pulled straight out toward the ears",
                "the mouth is elongated and flattened horizontally",
                "the skin beyond the lip corners is stretched",
            ),
            (1, 2, 4, 5, 25),
        ),
        ActionUnit(
            22,
            "Lip Funneler",
            ("orbicularis oris",),
            "mouth",
            (
                "the lips are flared outward into a funnel",
                "the lips push forward and the teeth may show",
                "the mouth forms a trumpet-like shape",
            ),
            (18, 25),
        ),
        ActionUnit(
            23,
            "Lip Tightener",
            ("orbicularis oris",),
            "mouth",
            (
                "the lips are tightened and their red parts narrow",
                "the lip margins roll slightly inward and look thin",
                "small bulges may form around the tense lips",
            ),
            (4, 7, 24),
        ),
        ActionUnit(
            24,
            "Lip Pressor",
            ("orbicularis oris",),
            "mouth",
            (
                "the closed lips are pressed firmly together",
                "the lips narrow and the skin around them bulges",
                "the lower lip is pushed against the upper lip",
            ),
            (17, 23),
        ),
        ActionUnit(
            25,
            "Lips Part",
            (
                "depressor labii inferioris",
                "relaxation of mentalis",
                "relaxation of orbicularis oris",
            ),
            "mouth",
            (
                "the lips separate slightly",
                "the teeth or the inside of the mouth may become visible",
                "the jaw itself need not drop",
            ),
            (12, 26, 10),
        ),
        ActionUnit(
            26,
            "Jaw Drop",
            ("masseter relaxed", "temporalis relaxed", "internal pterygoid relaxed"),
            "jaw",
            (
                "the jaw lowers and the mouth opens loosely",
                "the space between the teeth widens",
                "the lower face lengthens without stretching the lips",
            ),
            (25, 5, 1, 2),
        ),
        ActionUnit(
            27,
            "Mouth Stretch",
            ("pterygoids", "digastric"),
            "jaw",
            (
                "the mouth is opened wide by actively pulling the jaw down",
                "the lips and cheeks are stretched tight",
                "the mouth opening becomes tall and oval",
            ),
            (1, 2, 5),
        ),
        ActionUnit(
            28,
            "Lip Suck",
            ("orbicularis oris",),
            "mouth",
            (
                "the lips are sucked inward over the teeth",
                "the red parts of the lips disappear from view",
                "the skin around the mouth is drawn in",
            ),
            (17, 24),
        ),
        ActionUnit(
            43,
            "Eyes Closed",
            ("relaxation of levator palpebrae superioris", "orbicularis oculi, pars palpebralis"),
            "eyes",
            (
                "the upper eyelids droop until the eyes are closed",
                "the eyelids rest together without squeezing",
                "no tension lines form around the eyes",
            ),
            (6, 7),
        ),
        ActionUnit(
            45,
            "Blink",
            ("relaxation of levator palpebrae superioris", "orbicularis oculi, pars palpebralis"),
            "eyes",
            (
                "the eyes close and reopen quickly",
                "the eyelids meet for a brief moment",
                "the eye region returns to neutral at once",
            ),
            (5,),
        ),
        ActionUnit(
            46,
            "Wink",
            ("orbicularis oculi",),
            "eyes",
            (
                "one eye closes briefly while the other stays open",
                "the closure is one-sided and deliberate",
                "the cheek on the winking side may lift a little",
            ),
            (6, 12),
        ),
    ]
}

AU_SETS: dict[str, tuple[int, ...]] = {
    "bp4d": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "disfa": (1, 2, 4, 6, 9, 12, 25, 26),
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
