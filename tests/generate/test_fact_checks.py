"""The description checks that read what a row says (hiva.corpora.factcheck, the fact_checks of
hiva.corpora.filters): hand-written right rows pass, each kind of error drops with its reason,
and an AU added to the FACS table is covered with no code change."""

from __future__ import annotations

import dataclasses

import pytest

from hiva import movements as mv
from hiva.corpora import factcheck as facts
from hiva.corpora import filters
from hiva.corpora.filters import FilterConfig, check
from hiva.facs import AUS

CFG = FilterConfig()

RIGHT = [
    (1, "The inner ends of the eyebrows are pulled upward, and horizontal wrinkles appear in "
        "the centre of the forehead."),
    (1, "A contraction of the frontalis, pars medialis, raises the inner brows so they take an "
        "oblique, slanted shape."),
    (2, "The outer ends of the eyebrows are lifted and the lateral part of the brow arches "
        "upward."),
    (4, "The eyebrows are pulled down and drawn together, and vertical furrows form between "
        "the brows."),
    (6, "The cheeks are lifted and bulge under the eyes, and crow's-feet wrinkles radiate from "
        "the outer eye corners."),
    (7, "The eyelids tighten and the lower lid is raised and straightened, without cheek lift."),
    (10, "The upper lip is drawn straight up and the upper teeth may be exposed."),
    (12, "The lip corners are pulled up and outward toward the cheekbones, widening the mouth "
         "into a smile."),
    (15, "A contraction of the depressor anguli oris pulls the lip corners downward, giving a "
         "sad, downturned mouth."),
    (17, "The chin boss is pushed upward and the lower lip is pushed up."),
    (23, "The lips are tightened and narrowed, and their red parts look thinner."),
    (24, "The lips are pressed firmly together without pushing them forward."),
    (26, "The jaw drops and the mouth opens, with the lips parted."),
]

WRONG = [
    (1, "The inner ends of the eyebrows are pulled upward and the brows are pulled downward.",
     "contradicts_facts"),
    (10, "The upper lip is drawn up; the nasolabial furrow deepens; the upper lip is pushed "
         "down.", "contradicts_facts"),
    (6, "The eyes narrow as the cheeks lift, and the eyes widen.", "contradicts_facts"),
    (2, "The outer brows are lifted and the jaw drops.", "describes_other_au"),
    (1, "The inner brows are raised, and the chin is pulled forward.", "describes_other_au"),
    (12, "The mouth widens into a smile shape and the upper lip is pulled down.",
     "describes_other_au"),
    (6, "Code this action when the lip corners are pulled downward under lifted cheeks.",
     "describes_other_au"),
    (1, "The browcorpse is pulled upward and the forehead wrinkles horizontally.",
     "unknown_words"),
    (14, "A contraction of the buccenadimels means that the lips are stretched slightly "
         "sideways.", "unknown_words"),
    (1, "Seen from the inside, the inner ends of the eyebrows are pulled upward.",
     "template_residue"),
    (10, "Upper Lip Raiser. Muscle: levator labii superioris. Cues: the upper lip is drawn "
         "straight up.", "template_residue"),
    (23, "The lips are tightened and their red parts narrow. Often seen with: the brow.",
     "template_residue"),
    (4, "The eyebrows are lowered and drawn together; the eye opening narrows from above; the "
        "eyebrows are lowered and pulled together.", "repeated_clause"),
]


@pytest.mark.parametrize("au, text", RIGHT)
def test_right_rows_pass(au, text):
    assert check(text, au, CFG) is None, (filters.unknown_words(text),
                                           filters.template_residue(text),
                                           facts.check_facts(text, au))


@pytest.mark.parametrize("au, text, reason", WRONG)
def test_each_error_drops_with_its_reason(au, text, reason):
    assert check(text, au, CFG) == reason
    if reason in ("contradicts_facts", "describes_other_au"):
        assert facts.check_facts(text, au).reason == reason


def test_the_facts_pass_their_own_checks():
    for n, a in AUS.items():
        for cue in (a.name, *a.appearance):
            assert facts.check_facts(cue, n).reason is None, (n, cue)
    assert filters.unknown_words(" ".join(c for a in AUS.values() for c in a.appearance)) == []


def test_other_au_named_and_checks_can_be_off():
    got = facts.check_facts("The outer brows are lifted and the jaw drops.", 2)
    assert got.clause == "jaw down" and 26 in got.other_aus
    off = dataclasses.replace(CFG, fact_checks=False)
    assert check("The outer brows are lifted and the jaw drops.", 2, off) is None


def test_movements_read_clauses():
    got = mv.movements("The lip corners are pulled up and outward; the eyes do not narrow.")
    assert [(m.part, m.direction) for m in got] == [("lip corner", "up"), ("lip corner", "out")]
    # "the eye opening" is a part, and a muscle's name is no movement
    assert mv.movements("the eye opening narrows") == [mv.Movement("eye", "in")]
    assert mv.movements("the depressor supercilii acts") == []


@pytest.mark.parametrize("au, said", [(1, "The inner brows are raised"),
                                      (2, "The outer brows are lifted")])
def test_without_negates_the_movement_it_names(au, said):
    """"without X" claims no X: the cheek, which AU1 and AU2 neither move nor name, and the
    brows pulled down, which their facts oppose, pass when negated and drop when claimed."""
    cases = [("cheek lift", "describes_other_au", "cheek up", 6),
             ("the brows being pulled down", "contradicts_facts", "brow down", 4)]
    for what, reason, clause, other in cases:
        for negated in (f"{said} without {what}.", f"{said}, without {what}."):
            assert clause not in [f"{m.part} {m.direction}" for m in mv.movements(negated)]
            assert check(negated, au, CFG) is None, facts.check_facts(negated, au)
        claimed = f"{said}, with {what}."
        got = facts.check_facts(claimed, au)
        assert (got.reason, got.clause) == (reason, clause) and other in got.other_aus
        assert check(claimed, au, CFG) == reason


@pytest.fixture
def clear_caches():
    def clear():
        facts.au_facts.cache_clear()
        mv._muscle_re.cache_clear()
        filters.facs_vocabulary.cache_clear()
        filters._FACT_WORDS.clear()
        filters._NAME_PATTERNS.clear()

    clear()
    yield
    clear()


def test_a_new_au_is_checked_without_code_changes(monkeypatch, clear_caches):
    from hiva import facs
    from hiva.facs import ActionUnit

    table = dict(AUS)
    table[29] = ActionUnit(29, "Jaw Thrust", ("pterygoideus lateralis",), "jaw",
                           ("the jaw is pushed forward",
                            "the lower teeth move in front of the upper teeth",
                            "the chin juts out"))
    monkeypatch.setattr(facs, "AUS", table)
    monkeypatch.setattr(facts, "AUS", table, raising=False)
    monkeypatch.setattr(filters, "AUS", table)
    assert facts.au_facts(29).moves >= {mv.Movement("jaw", "forward")}
    ok = "The jaw is pushed forward so the lower teeth move in front of the upper teeth."
    assert check(ok, 29, CFG) is None
    assert check("The jaw is pushed forward and then pulled back toward the throat.", 29,
                 CFG) == "contradicts_facts"
    got = facts.check_facts("The inner brows are raised and the jaw is pushed forward.", 1)
    assert got.reason == "describes_other_au" and 29 in got.other_aus
    # its muscle is FACS vocabulary now, not an unknown word
    assert filters.unknown_words("A contraction of the pterygoideus lateralis.") == []
