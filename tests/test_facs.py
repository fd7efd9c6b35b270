"""The FACS table as the prompts read it: complete, consistent, and unchanged unless on purpose."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from hiva.errors import HivaError
from hiva.facs import AU_SETS, AUS, INTENSITIES, au_column, parse_aus

REGIONS = {"brows", "eyes", "nose", "cheeks", "mouth", "chin", "jaw", "head"}


def test_every_au_is_complete_and_refers_to_known_aus():
    assert len(AUS) == 31 and set(AU_SETS["bp4d"]) <= set(AUS) and set(AU_SETS["disfa"]) <= set(AUS)
    for n, au in AUS.items():
        assert au.number == n and au.code == f"AU{n}" and au.name
        assert au.region in REGIONS, (n, au.region)
        assert au.muscles and all(m.strip() == m and m for m in au.muscles), n
        assert len(au.appearance) >= 2 and all(c and not c.endswith(".") for c in au.appearance)
        assert n not in au.often_with and set(au.often_with) <= set(AUS), n
        assert au.unlike in AUS and au.unlike != n and au.contrast and au.cue_words, n


def test_table_text_is_pinned():
    # Every prompt, and so every corpus fingerprint, is built from this table: an edit must be a
    # choice. When it is one, update the hash here and say so in the commit.
    d = json.dumps({"aus": {k: dataclasses.asdict(v) for k, v in AUS.items()}, "sets": AU_SETS,
                    "int": INTENSITIES}, sort_keys=True)
    assert hashlib.sha256(d.encode()).hexdigest()[:16] == "f7e82b8dc0d21502"


def test_parse_aus_and_columns():
    assert parse_aus("AU1, au12,4,1") == (1, 12, 4)
    assert parse_aus("disfa") == AU_SETS["disfa"] and parse_aus([2, 1]) == (2, 1)
    assert au_column(4) == "AU04"
    with pytest.raises(HivaError, match="unknown AU '99'"):
        parse_aus("1,99")
    with pytest.raises(HivaError, match="empty AU list"):
        parse_aus(",")
