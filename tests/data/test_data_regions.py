"""AU regions on landmarks: geometry, rasterising, the renderer's exact landmarks, and regions that
follow the face through the transforms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hiva.facs import AUS, REGIONS, parse_regions
from hiva.regions import (
    ANCHORS,
    au_discs,
    disc_fractions,
    localisation,
    map_kl,
    region_mask,
    region_prior,
)


def _face(size=112.0):
    """hiva-synth anchors of an upright face: eyes at y=40, eye distance 40 px, mouth at 80."""
    pts = {
        "eye_r": (36, 40), "eye_l": (76, 40), "eye_upper_r": (36, 36), "eye_upper_l": (76, 36),
        "eye_lower_r": (36, 44), "eye_lower_l": (76, 44), "eye_outer_r": (26, 40),
        "eye_outer_l": (86, 40), "brow_inner_r": (48, 28), "brow_inner_l": (64, 28),
        "brow_mid_r": (38, 26), "brow_mid_l": (74, 26), "brow_outer_r": (26, 28),
        "brow_outer_l": (86, 28), "nose_root": (56, 40), "nose_tip": (56, 62),
        "nose_wing_r": (48, 64), "nose_wing_l": (64, 64), "mouth_corner_r": (44, 80),
        "mouth_corner_l": (68, 80), "lip_upper": (56, 76), "lip_lower": (56, 86),
        "mouth": (56, 80), "chin": (56, 104),
    }
    return np.array([pts[a] for a in ANCHORS], dtype=np.float64)


def test_discs_are_placed_in_eye_distances_and_mirror_across_the_midline():
    d = au_discs(_face(), "hiva-synth", [12, 1, 20])
    # AU12: one disc on each mouth corner, radius 0.28 eye distances (40 px).
    np.testing.assert_allclose(d[0, :2], [[44, 80, 11.2], [68, 80, 11.2]], atol=1e-4)
    # AU1: the inner brows moved up (toward the brows from the mouth) by 0.3 × 40 px.
    np.testing.assert_allclose(d[1, :2, :2], [[48, 16], [64, 16]], atol=1e-4)
    # AU20: "out" points away from the midline on both sides.
    assert d[2, 0, 0] < 44 and d[2, 1, 0] > 68
    assert np.isnan(d[0, 2:]).all()  # padding rows of an AU with fewer discs


def test_fractions_hit_the_cells_under_the_discs():
    # One disc of radius 4 centred in cell (row 1, col 2) of a 4×4 grid over 32 px (8 px cells).
    discs = np.array([[[20.0, 12.0, 4.0], [np.nan] * 3]], dtype=np.float32)
    f = disc_fractions(discs, 32, (4, 4), sub=8)
    assert f.shape == (1, 4, 4)
    nz = np.argwhere(f[0] > 0)
    assert nz.tolist() == [[1, 2]]
    assert f[0, 1, 2] == pytest.approx(np.pi * 16 / 64, abs=0.06)  # disc area / cell area
    # The same through torch, and at another resolution: the mouth corners of the face.
    g = disc_fractions(torch.from_numpy(au_discs(_face(), "hiva-synth", [12])), 112, (7, 7))
    rows, cols = np.nonzero(g[0].numpy())
    assert set(rows) == {4, 5} and set(cols) <= {2, 3, 4}  # cells of rows 64..96 px
    assert g[0, :3].sum() == 0  # nothing on the upper face


def test_a_new_region_line_is_read_without_code_changes():
    got = parse_regions("99: mouth_corner 0.1,0 r0.2; chin 0,0 r0.3")
    assert [d.anchor for d in got[99]] == ["mouth_corner_r", "mouth_corner_l", "chin"]
    with pytest.raises(ValueError, match="unknown landmark"):
        parse_regions("99: ear 0,0 r0.2")
    assert set(REGIONS) == set(AUS)  # every AU of the FACS table has a region


def test_prior_kl_and_scores_match_hand_counts():
    frac = torch.tensor([[0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    logp, has = region_prior(frac, 0.2)
    p = logp[0].exp()
    # 0.8 of the mass over the region in proportion to the shares, 0.2 spread evenly.
    torch.testing.assert_close(p, torch.tensor([0.05, 0.05 + 0.8 / 1.5, 0.05 + 0.4 / 1.5, 0.05]))
    assert has.tolist() == [True, False] and logp[1].abs().sum() == 0
    assert float(map_kl(p.unsqueeze(0), frac[:1], 0.2)) == pytest.approx(0.0, abs=1e-6)
    assert float(map_kl(torch.full((1, 4), 0.25), frac[:1], 0.2)) > 0.05
    maps = torch.tensor([[0.1, 0.2, 0.6, 0.1], [0.7, 0.1, 0.1, 0.1], [0.25] * 4])
    fr = torch.tensor([[0.0, 1.0, 0.5, 0.0], [0.0, 1.0, 0.5, 0.0], [0.0] * 4])
    energy, point, e_chance, p_chance = localisation(maps, fr)
    torch.testing.assert_close(energy[:2], torch.tensor([0.2 + 0.3, 0.1 + 0.05]))
    assert point[:2].tolist() == [1.0, 0.0]  # peak on cell 2 (in) / cell 0 (out)
    torch.testing.assert_close(e_chance[:2], torch.tensor([0.375, 0.375]))
    torch.testing.assert_close(p_chance[:2], torch.tensor([0.5, 0.5]))
    assert all(torch.isnan(t[2]) for t in (energy, point, e_chance, p_chance))


def test_the_renderer_changes_pixels_inside_each_au_region():
    from hiva.data.synth import _subject_rng
    from hiva.data.synth_face import SYNTH_AUS, render_face, sample_identity

    ident = sample_identity(_subject_rng(0, 3, 0))
    pose = (0.08, 1.0, 0.02, -0.01, 0.03)
    base = render_face(ident, {}, 160, pose).astype(int)
    for au in SYNTH_AUS:
        img, pts = render_face(ident, {au: 4.0}, 160, pose, landmarks=True)
        changed = np.abs(img.astype(int) - base).sum(-1) > 30
        inside = region_mask(au_discs(pts, "hiva-synth", [au])[0], 160, 160)
        # The change is denser inside the region than outside it, and a good share falls in it
        # (AU26 moves the whole jaw line, far beyond its region around the lower lip).
        share = changed[inside].sum() / changed.sum()
        ratio = changed[inside].mean() / changed[~inside].mean()
        assert ratio > (1.5 if au == 26 else 5), (au, ratio)
        assert share > (0.04 if au == 26 else 0.3), (au, share)


def test_regions_follow_the_face_through_flip_crop_and_resize(tmp_path):
    from PIL import Image

    from hiva.data.dataset import AUDataset
    from hiva.data.transforms import eval_transform, train_transform

    face = _face() + [6.0, 0.0]  # off the image's centre line, so a flip shows
    img = np.full((112, 112, 3), 90, np.uint8)
    img[78:82, 48:52] = 255  # a white mark on the right mouth corner (50, 80)
    Image.fromarray(img).save(tmp_path / "a.png")
    df = pd.DataFrame({"path": [str(tmp_path / "a.png")] * 2, "subject": "s", "sequence": "t",
                       "frame": [0, 1], "AU12": 1,
                       "landmarks": [list(face.ravel()), None]})
    df.attrs["hiva"] = {"landmark_scheme": "hiva-synth"}
    ev = AUDataset(df, (12,), eval_transform(size=56, resize=56))
    got = ev[0]["regions"].numpy()
    np.testing.assert_allclose(got, au_discs(face, "hiva-synth", [12]) / 2, atol=1e-3)
    assert np.isnan(ev[1]["regions"].numpy()).all()  # no landmarks → no region
    tr = AUDataset(df, (12,), train_transform(size=48, resize=56, jitter=0, flip=True), seed=0)
    seen = set()
    for e in range(8):
        tr.set_epoch(e)
        item = tr[0]
        x = item["image"][0]
        ys, xs = np.nonzero((x > x.max() - 0.1).numpy())
        mark = np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # the mark after crop/resize/flip
        centres = item["regions"].numpy()[0, :2, :2]
        assert np.linalg.norm(centres - mark, axis=1).min() < 1.5, (e, centres, mark)
        seen.add(bool(centres[0, 0] > centres[1, 0]))  # right corner drawn right of the left
    assert seen == {True, False}  # some epochs flipped, some did not
