from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hiva.data.manifest import manifest_aus, manifest_meta, read_manifest
from hiva.data.synth import _subject_rng, render_synthetic
from hiva.data.synth_face import SYNTH_AUS, render_face, sample_identity
from hiva.errors import HivaError

# Where each AU's change must lie: (low, high) bounds on the diff centroid's y in face units
# (eyes near -0.1, nose base near 0.2, mouth near 0.45).
REGION = {1: (-0.6, -0.2), 2: (-0.6, -0.2), 4: (-0.4, -0.1), 5: (-0.25, 0.0), 7: (-0.25, 0.0),
          6: (-0.2, 0.2), 9: (-0.1, 0.3), 10: (0.2, 0.6), 12: (0.2, 0.6), 14: (0.3, 0.6),
          15: (0.3, 0.7), 17: (0.35, 0.8), 20: (0.3, 0.6), 23: (0.3, 0.6), 24: (0.3, 0.6),
          25: (0.4, 0.9), 26: (0.5, 1.1)}


@pytest.mark.parametrize("seed", [0, 1])
def test_each_au_changes_its_region(seed):
    size = 160
    p = sample_identity(_subject_rng(seed, 3, 0))
    neutral = render_face(p, {}, size).astype(int)
    for k in SYNTH_AUS:
        d = np.abs(render_face(p, {k: 4.0}, size).astype(int) - neutral).sum(2) > 20
        assert d.sum() > 40, f"AU{k} barely changes the face ({d.sum()} px)"
        ys, _ = np.nonzero(d)
        y = (ys.mean() - (size / 2 + 0.02 * size)) / (0.4 * size)
        lo, hi = REGION[k]
        assert lo <= y <= hi, f"AU{k} changes y={y:.2f}, expected in [{lo}, {hi}]"
        weak = np.abs(render_face(p, {k: 1.5}, size).astype(int) - neutral).sum(2) > 20
        assert 0 < weak.sum() <= d.sum() + 40, f"AU{k}: intensity does not scale the change"


def test_render_set_deterministic_resumable(tmp_path):
    a = render_synthetic(tmp_path / "a", subjects=3, per_subject=4, seed=5, size=128,
                         workers=1, grid=False, progress=False)
    b = render_synthetic(tmp_path / "b", subjects=3, per_subject=4, seed=5, size=128,
                         workers=2, grid=True, progress=False)
    da, db = read_manifest(a), read_manifest(b)
    assert len(da) == 12 and da["subject"].nunique() == 3
    assert manifest_aus(da) == SYNTH_AUS
    cols = [c for c in da.columns if c.startswith("AU")]
    assert da[cols].equals(db[cols])
    for pa, pb in zip(da["path"], db["path"]):
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)))
    assert Image.open(da["path"][0]).size == (128, 128)
    assert manifest_meta(a)["synthetic"] is True
    assert "SYNTHETIC" in (tmp_path / "a" / "README.md").read_text()
    assert (tmp_path / "b" / "grids" / "AU12.png").is_file()
    # intensities and labels agree: label = intensity >= 1
    assert ((da["AU12_intensity"] >= 1).astype(int) == da["AU12"].astype(int)).all()
    # resume: a deleted subject is re-rendered, the rest reused, nothing doubles
    (tmp_path / "a" / "parts" / "S0001.json").unlink()
    again = read_manifest(render_synthetic(tmp_path / "a", subjects=3, per_subject=4, seed=5,
                                           size=128, workers=1, grid=False, progress=False))
    assert again[cols].equals(da[cols]) and len(again) == 12
    with pytest.raises(HivaError, match="other settings"):
        render_synthetic(tmp_path / "a", subjects=3, per_subject=4, seed=6, size=128,
                         grid=False, progress=False)


def test_labels_cooccur_and_cover_all_aus(tmp_path):
    from hiva.data.synth import sample_expression

    rng = np.random.default_rng(0)
    x = np.array([[e[k] >= 1 for k in SYNTH_AUS] for e in
                  (sample_expression(rng, 0.3) for _ in range(3000))], float)
    rates = x.mean(0)
    assert (rates > 0.04).all() and (rates < 0.6).all()
    i6, i12, i2 = SYNTH_AUS.index(6), SYNTH_AUS.index(12), SYNTH_AUS.index(2)
    assert x[x[:, i6] == 1, i12].mean() > 2 * x[:, i12].mean() * 0.9  # happiness couples 6 & 12
    assert x[x[:, i6] == 1, i12].mean() > x[x[:, i2] == 1, i12].mean()


def test_killed_part_write_is_redone_and_no_temp_file_stays(tmp_path):
    out = tmp_path / "s"
    kw = dict(subjects=2, per_subject=2, seed=1, size=64, workers=1, grid=True, progress=False)
    first = read_manifest(render_synthetic(out, **kw))
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    # A run killed while S0001 was being written: its part file never got its name, and an
    # image was cut short. The rerun renders S0001 again; nothing doubles.
    part = out / "parts" / "S0001.json"
    part.rename(part.with_name("S0001.json.tmp4242"))
    img = out / "images" / "S0001" / "00001.jpg"
    img.write_bytes(b"\xff\xd8 cut short")
    again = read_manifest(render_synthetic(out, **kw))
    assert part.is_file() and len(again) == 4
    cols = [c for c in first.columns if c.startswith("AU")]
    assert again[cols].equals(first[cols])
    assert Image.open(img).size == (64, 64)


def _auc(score, y):
    pos, neg = score[y == 1], score[y == 0]
    return float(((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean())


def test_independent_labels_do_not_cooccur():
    """On the independent set no AU's label scores another: AU1's label as an AU2 detector is
    at chance (on the emotions set it is far above: the confound this set removes)."""
    from hiva.data.synth import sample_expression

    def draw(cooc, n=4000):
        rng = np.random.default_rng(1)
        return np.array([[e[k] >= 1 for k in SYNTH_AUS] for e in
                         (sample_expression(rng, 0.3, cooc, 0.3) for _ in range(n))], float)

    x = draw("independent")
    assert np.abs(x.mean(0) - 0.3).max() < 0.04
    c = np.corrcoef(x.T)
    assert np.abs(c[~np.eye(len(SYNTH_AUS), dtype=bool)]).max() < 0.08
    i1, i2 = SYNTH_AUS.index(1), SYNTH_AUS.index(2)
    assert abs(_auc(x[:, i1], x[:, i2]) - 0.5) < 0.03
    e = draw("emotions")
    assert _auc(e[:, i1], e[:, i2]) > 0.65


def test_independent_set_records_how_it_was_drawn_and_its_neutral_landmarks(tmp_path):
    m = render_synthetic(tmp_path / "i", subjects=2, per_subject=3, seed=2, size=64, workers=1,
                         grid=False, progress=False, cooccurrence="independent", base_rate=0.4)
    meta, df = manifest_meta(m), read_manifest(m)
    assert meta["cooccurrence"] == "independent" and meta["base_rate"] == 0.4
    assert "independent" in (tmp_path / "i" / "README.md").read_text()
    # neutral landmarks: one identity at each frame's pose, no AU; the drawn ones move with AUs
    assert len(df["landmarks_neutral"][0]) == len(df["landmarks"][0])
    moved = [np.abs(np.subtract(a, b)).max() for a, b in
             zip(df["landmarks"], df["landmarks_neutral"])]
    assert max(moved) > 1.0
    with pytest.raises(HivaError, match="other settings"):
        render_synthetic(tmp_path / "i", subjects=2, per_subject=3, seed=2, size=64,
                         grid=False, progress=False)  # emotions now: a different set
    with pytest.raises(HivaError, match="cooccurrence must be one of"):
        render_synthetic(tmp_path / "j", subjects=1, per_subject=1, size=64,
                         cooccurrence="anything", progress=False)
