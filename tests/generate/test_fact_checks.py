"""The description verifier (hiva.corpora.verify, the fact_checks of hiva.corpora.filters): right
rows pass, every kind of error a FACS coder found in the CPU default's corpus (issue 34) drops with
its reason, every AU's own facts pass, every AU has a cue that tells it from its nearest neighbour,
and an AU added to the FACS table is covered with no code change."""

from __future__ import annotations

import dataclasses
import re

import pytest

from hiva import movements as mv
from hiva.corpora import factcheck as facts
from hiva.corpora import filters, verify
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
    (14, "Code this action when dimples form in the cheeks just beyond the lip corners; the lip "
         "corners are pulled inward."),
    (15, "A contraction of the depressor anguli oris pulls the lip corners downward, giving a "
         "sad, downturned mouth."),
    (17, "The chin boss is pushed upward and the lower lip is pushed up."),
    (23, "The lips are tightened and narrowed, and their red parts look thinner."),
    (24, "The lips are pressed firmly together without pushing them forward."),
    (26, "The jaw drops and the mouth opens loosely."),
    # rows of the CPU default's corpus (SmolLM2-135M) that a coder reads as right
    (7, "The eyes are often tightened without cheek lift."),
    (12, "Code this action when the lip corners are pulled up and outward toward the "
         "cheekbones; also check that the mouth widens into a smile shape."),
    (24, "Code this action when the lips are pressed firmly together; the skin around them "
         "bulges; the lower lip is pushed against the upper lip."),
]

# (au, row, reason, what the verifier reports): the rows are the SmolLM2-135M corpus's, or the
# issue's quotes of them, one per kind of error
WRONG = [
    # the wrong part moves
    (4, "Code this action when the eyebrows are pulled down and the eyes are drawn together.",
     "unsupported_movement", "eye together"),
    (1, "The brow raiser action means that the brow is pulled upward, and the brow ridge is "
        "pushed outward.", "describes_other_au", "brow ridge out"),
    (7, "The eyes are straightened and the upper lids are raised; the lower lid is "
        "straightened.", "unsupported_movement", "eye flat"),
    (1, "A marked contraction of the frontalis, pars medialis means that the inner ends of the "
        "eyebrows are pulled upward; the chin takes an oblique, slanted shape, high at the lip "
        "corner.", "other_part", "chin"),
    (10, "The upper lip is drawn straight up and the lower teeth may be exposed.",
     "other_part", "lower teeth"),
    # the wrong direction, or the AU's own action denied
    (1, "The inner ends of the eyebrows are raised and the brow is pushed back.",
     "unsupported_movement", "brow back"),
    (24, "The lips are pressed firmly together, the skin around them is pushed down.",
     "contradicts_facts", "lip down"),
    (23, "The lips are tightened and then relaxed.", "contradicts_facts", "lip relax"),
    (14, "Code this action when the lips are pulled inward and the dimples or wrinkles form "
         "beside the lip corners; also check that the lips are stretched slightly sideways and "
         "flattened.", "neighbour_cue", "stretch (AU20)"),
    (7, "Code this action when the eyes don't tighten and the lower lid stays straight.",
     "negates_own_movement", "not eye tense"),
    # invented anatomy
    (15, "The lip corner depressor muscle is the tongue's lateral retractor muscle.",
     "invented_anatomy", "muscle is the tongue"),
    (12, "The zygomaticus major, which is the upper part of the lip, pulls the lip corners up.",
     "invented_anatomy", "zygomaticus major, which is the upper part of the lip"),
    (17, "The chin pressor pushes the chin boss upward.", "invented_anatomy", "chin pressor"),
    (6, "A contraction of the orbicularis oculi, pars palpebralis lifts the cheeks.",
     "other_au_muscle", "orbicularis oculi, pars palpebralis"),
    # another AU's movement leaking in
    (6, "Code this action when one cheek raises; also check that the cheek on the winking side "
        "may bulge under the eyes.", "other_au_action", "winking"),
    (1, "The inner brows rise, and the action involves a downward pull.",
     "contradicts_facts", "inner brow down (AU4)"),
    (1, "A downward pull is involved in the inner brow raiser.", "unanchored_movement", "down"),
    # a feature in the wrong place
    (14, "Code this action when dimples form on the lips.", "wrong_place", "on lip"),
    (14, "Code this action when dimples form in the cheeks just beyond the lip corners, and "
         "skin beneath the lip corners bulges slightly.", "wrong_place", "below lip corner"),
    # contact without direction
    (24, "Code this action when lips are pressed to the chin.", "wrong_contact", "chin"),
    # intensity or evidence tags
    (17, "Code this action when the chin presses upward (trace evidence).", "intensity_tag",
     "(trace evidence)"),
    # nothing says which of two neighbours it is
    (2, "Code this action when the brow is lifted; the brow is pulled upward.",
     "no_distinguishing_cue", "AU1"),
    (1, "The eyebrows are raised high.", "no_distinguishing_cue", "AU2"),
    (12, "A wrinkled smile shape is created.", "unverified", ""),
]


@pytest.mark.parametrize("au, text", RIGHT)
def test_right_rows_pass(au, text):
    got = verify.verify(text, au)
    assert check(text, au, CFG) is None, (filters.unknown_words(text),
                                           filters.template_residue(text), got)


@pytest.mark.parametrize("au, text, reason, what", WRONG)
def test_each_error_drops_with_its_reason(au, text, reason, what):
    got = verify.verify(text, au)
    assert (got.reason, check(text, au, CFG)) == (reason, reason), got
    assert what in got.why
    bad = [c for c in got.clauses if c.verdict not in ("verified", "harmless")]
    assert reason in ("unverified", "no_distinguishing_cue") or bad[0].verdict == reason
    assert reason in verify.REASONS


def test_clause_verdicts_name_each_clause():
    got = verify.verify("Code this action when the eyelids tighten; the eyes do not flinch.", 7)
    assert [(c.text, c.verdict) for c in got.clauses] == [
        ("Code this action when the eyelids tighten", "verified"),
        ("the eyes do not flinch", "harmless")]
    assert got.ok and got.cue == "tight"


def test_every_au_passes_on_its_own_facts():
    for n, a in AUS.items():
        for cue in (a.name, *a.appearance):
            got = verify.verify(cue, n)
            assert got.reason in (None, "no_distinguishing_cue", "unverified"), (n, cue, got)
        whole = "; ".join(a.appearance) + "."
        assert verify.verify(whole, n).ok, (n, verify.verify(whole, n))
    assert filters.unknown_words(" ".join(c for a in AUS.values() for c in a.appearance)) == []


def test_every_au_has_a_cue_against_its_nearest_neighbour():
    """The neighbour-cue rule: each AU names its nearest neighbour, its defining cue (its name or
    first appearance line) uses one of its cue words, and its neighbour's name and defining cue
    use none, so a row that passes says which of the two it is."""
    for n, a in AUS.items():
        assert a.unlike in AUS and a.unlike != n and a.contrast and a.cue_words, n
        for w in a.cue_words:
            re.compile(w)
        assert facts.cue_found(f"{a.name}. {a.appearance[0]}.", n), n
        nb = AUS[a.unlike]
        for t in (nb.name, nb.appearance[0]):
            assert facts.cue_found(t, n) is None, (n, a.unlike, t)
    # the pairs the coder named
    for au, right, wrong in [(1, "inner", "outer"), (2, "lateral", "inner"),
                             (6, "crow's feet", "tightened lids"), (7, "tightened lids", "cheek"),
                             (14, "dimples", "stretched"), (23, "thin", "pressed"),
                             (24, "pressed", "thin")]:
        assert facts.cue_found(f"the {right} part moves", au), (au, right)
        assert facts.cue_found(f"the {wrong} part moves", au) is None, (au, wrong)
    # a cue under a negation does not count
    assert facts.cue_found("the lids narrow without cheek lift", 6) is None


def test_other_au_named_and_checks_can_be_off():
    got = verify.verify("The outer brows are lifted and the jaw drops.", 2)
    assert got.reason == "describes_other_au" and "jaw down" in got.why and "AU26" in got.why
    off = dataclasses.replace(CFG, fact_checks=False)
    assert check("The outer brows are lifted and the jaw drops.", 2, off) is None


def test_movements_read_clauses():
    got = mv.movements("The lip corners are pulled up and outward; the eyes do not narrow.")
    assert [(m.part, m.direction) for m in got] == [("lip corner", "up"), ("lip corner", "out")]
    # "the eye opening" is a part, and a muscle's name is no movement
    assert mv.movements("the eye opening narrows") == [mv.Movement("eye", "in")]
    assert mv.movements("the depressor supercilii acts") == []
    c = mv.read_clauses("The inner brows are raised without cheek lift.")[0]
    assert c.moves == (mv.Movement("inner brow", "up"),)
    assert c.negated == (mv.Movement("cheek", "up"),)


@pytest.mark.parametrize("au, said", [(1, "The inner brows are raised"),
                                      (2, "The outer brows are lifted")])
def test_without_negates_the_movement_it_names(au, said):
    """"without X" claims no X: the cheek, which AU1 and AU2 neither move nor name, and the
    brows pulled down, which their facts oppose, pass when negated and drop when claimed."""
    cases = [("cheek lift", "describes_other_au", "cheek up", "AU6"),
             ("the brows being pulled down", "contradicts_facts", "brow down", "AU4")]
    for what, reason, clause, other in cases:
        for negated in (f"{said} without {what}.", f"{said}, without {what}."):
            assert clause not in [f"{m.part} {m.direction}" for m in mv.movements(negated)]
            assert check(negated, au, CFG) is None, verify.verify(negated, au)
        claimed = f"{said}, with {what}."
        got = verify.verify(claimed, au)
        assert got.reason == reason and clause in got.why and other in got.why, got
        assert check(claimed, au, CFG) == reason


@pytest.fixture
def clear_caches():
    def clear():
        facts.au_facts.cache_clear()
        facts._cues.cache_clear()
        verify._muscle_index.cache_clear()
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
                            "the chin juts out"), (), 26, "the jaw goes forward, not down",
                           ("forward", "thrust"))
    for mod in (facs, facts, filters, verify, mv):
        monkeypatch.setattr(mod, "AUS", table, raising=False)
    assert facts.au_facts(29).moves >= {mv.Movement("jaw", "forward")}
    ok = "The jaw is pushed forward so the lower teeth move in front of the upper teeth."
    assert check(ok, 29, CFG) is None
    assert check("The jaw is pushed forward and then pulled back again.", 29,
                 CFG) == "contradicts_facts"
    assert check("The jaw moves and the lower teeth show.", 29, CFG) == "no_distinguishing_cue"
    got = verify.verify("The inner brows are raised and the jaw is pushed forward.", 1)
    assert got.reason == "describes_other_au" and "AU29" in got.why
    # its muscle is FACS vocabulary now, not an unknown word
    assert filters.unknown_words("A contraction of the pterygoideus lateralis.") == []
