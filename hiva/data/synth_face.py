"""One synthetic face: a parametric 2D face drawn with OpenCV, its expression driven by FACS AUs.

``sample_identity`` draws who it is (face shape, proportions, skin tone, hair, eyes, background);
``render_face`` draws that identity with AU intensities (0-5) at a pose, optionally with the
photometric degradations of a real photo (lighting, noise, blur). Clearly synthetic. The set
built from these faces: ``hiva.data.synth``.
"""

from __future__ import annotations

import math

import numpy as np

from hiva.regions import ANCHORS

# The AUs a face can show, and so the label columns of the synthetic set.
SYNTH_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)

SKIN = np.array([
    (255, 224, 196), (241, 194, 160), (224, 172, 125), (198, 134, 96),
    (160, 105, 70), (120, 78, 52), (88, 57, 40),
], dtype=np.float32)
HAIR = np.array([(20, 16, 14), (60, 40, 25), (110, 75, 40), (180, 140, 80), (120, 120, 120),
                 (150, 60, 30)], dtype=np.float32)
IRIS = np.array([(70, 45, 25), (40, 90, 140), (60, 110, 70), (100, 80, 50)], dtype=np.float32)


def sample_identity(rng: np.random.Generator) -> dict:
    t = rng.uniform(0, len(SKIN) - 1)
    i = int(t)
    skin = SKIN[i] * (1 - (t - i)) + SKIN[min(i + 1, len(SKIN) - 1)] * (t - i)
    return {
        "skin": skin * rng.uniform(0.95, 1.05, 3),
        "hair": HAIR[rng.integers(len(HAIR))] * rng.uniform(0.8, 1.2),
        "hair_style": int(rng.integers(4)),
        "iris": IRIS[rng.integers(len(IRIS))],
        "bg": rng.uniform(40, 230, 3).astype(np.float32),
        "bg2": rng.uniform(40, 230, 3).astype(np.float32),
        "fw": rng.uniform(0.62, 0.76), "fh": rng.uniform(0.9, 1.04),
        "chin": rng.uniform(0.55, 0.85),
        "ex": rng.uniform(0.25, 0.31), "ey": rng.uniform(-0.13, -0.06),
        "ew": rng.uniform(0.105, 0.135), "eu": rng.uniform(0.045, 0.06),
        "el": rng.uniform(0.03, 0.04),
        "bh": rng.uniform(0.14, 0.19), "bt": rng.uniform(0.028, 0.05),
        "bx": rng.uniform(0.07, 0.11),
        "nl": rng.uniform(0.16, 0.24), "nw": rng.uniform(0.04, 0.055),
        "my": rng.uniform(0.42, 0.5), "mw": rng.uniform(0.16, 0.21),
        "ut": rng.uniform(0.03, 0.045), "lt": rng.uniform(0.04, 0.06),
    }


def _bez(p0, p1, p2, n: int = 10) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def _through(p0, mid, p2, n: int = 10) -> np.ndarray:
    """Quadratic curve from p0 to p2 passing through ``mid`` at t=0.5."""
    p0, mid, p2 = map(np.asarray, (p0, mid, p2))
    return _bez(p0, 2 * mid - (p0 + p2) / 2, p2, n)


def _ellipse(cx, cy, rx, ry, a0=0.0, a1=2 * math.pi, n=24) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


class _Canvas:
    """Draws in face units (x right, y down, face centre at 0) through a similarity transform."""

    def __init__(self, img, size, scale, angle, tx, ty, yaw):
        self.img, self.yaw = img, yaw
        s = size * 0.40 * scale
        c, sn = math.cos(angle), math.sin(angle)
        self.M = np.array([[s * c, -s * sn], [s * sn, s * c]])
        self.T = np.array([size / 2 + tx * size, size / 2 + ty * size + 0.02 * size])
        self.s = s

    def xy(self, pts, feature=True) -> np.ndarray:
        """Face units → pixel coordinates (OpenCV's: pixel i's centre at i)."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2).copy()
        if feature:  # yaw: inner features slide sideways, more near the centre line
            p[:, 0] += self.yaw * (1.0 - np.clip(np.abs(p[:, 0]) / 0.8, 0, 1) ** 2) * 0.5
        return p @ self.M.T + self.T

    def px(self, pts, feature=True) -> np.ndarray:
        return np.round(self.xy(pts, feature) * 16).astype(np.int32)

    def poly(self, pts, color, feature=True):
        import cv2

        cv2.fillPoly(self.img, [self.px(pts, feature)], _c(color), cv2.LINE_AA, shift=4)

    def line(self, pts, color, width, feature=True):
        import cv2

        w = max(1, int(round(width * self.s)))
        cv2.polylines(self.img, [self.px(pts, feature)], False, _c(color), w, cv2.LINE_AA, shift=4)


def _c(color):
    return tuple(float(v) for v in np.clip(color, 0, 255))


def _mix(a, b, t):
    t = float(np.clip(t, 0, 1))
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


def render_face(ident: dict, au: dict[int, float], size: int = 160, pose=(0.0, 1.0, 0.0, 0.0, 0.0),
                rng: np.random.Generator | None = None, difficulty: float = 0.0,
                landmarks: bool = False):
    """One RGB uint8 face. ``au`` maps AU number → intensity 0-5; ``pose`` = (roll radians,
    scale, shift x, shift y, yaw). With ``rng`` the photometric degradations are applied.

    ``landmarks=True`` returns ``(image, points)``: the exact positions, as drawn, of the anchors
    of ``hiva.regions.ANCHORS`` in this face (len(ANCHORS)×2, pixels with pixel i spanning
    [i, i+1]; the ``hiva-synth`` landmark scheme)."""
    import cv2

    a = {k: min(max(au.get(k, 0.0), 0.0), 5.0) / 5.0 for k in SYNTH_AUS}
    p = ident
    skin = p["skin"]
    img = np.empty((size, size, 3), np.uint8)
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img[:] = (p["bg"] * (1 - yy) + p["bg2"] * yy).astype(np.uint8)
    cv = _Canvas(img, size, pose[1], pose[0], pose[2], pose[3], pose[4])

    # Head outline: jaw drop (AU26) and lips parting (AU25) lengthen the lower face.
    jaw = 0.22 * a[26]
    drop = jaw + 0.02 * a[25]
    fw, fh = p["fw"], p["fh"] + drop
    if p["hair_style"] == 1:  # long hair behind the head
        cv.poly(np.concatenate([_ellipse(0, -0.05, fw + 0.12, 1.05, math.pi, 2 * math.pi),
                                [[fw + 0.14, 0.75], [-fw - 0.14, 0.75]]]), p["hair"], False)
    cv.poly([[-0.22, 0.6], [0.22, 0.6], [0.26, 1.4], [-0.26, 1.4]], skin * 0.8, False)  # neck
    for s in (-1, 1):
        cv.poly(_ellipse(s * fw, 0.02, 0.07, 0.14), skin * 0.88, False)  # ears
    up = _ellipse(0, 0.05, fw, 0.98, math.pi, 2 * math.pi, 24)
    t = np.linspace(0, math.pi, 24)
    k = np.sin(t) ** 4 * (1 - p["chin"])
    lo = np.stack([fw * np.cos(t) * (1 - k * 0.6), 0.05 + fh * np.sin(t)], 1)
    cv.poly(np.concatenate([up, lo]), skin, False)
    if p["hair_style"] in (0, 1, 3):
        low = -0.6 if p["hair_style"] == 3 else -0.66
        cap = _ellipse(0, 0.05, fw + 0.02, 1.0, math.pi * 1.02, math.pi * 1.98, 20)
        inner = _through([fw * 0.95, -0.42], [0, low], [-fw * 0.95, -0.42], 12)
        cv.poly(np.concatenate([cap, inner]), p["hair"], False)

    ex, ey, ew = p["ex"], p["ey"], p["ew"]
    line_c = skin * 0.5

    # Forehead: AU1 centre wrinkles, AU2 lateral wrinkles.
    for j in range(3):
        y = ey - 0.31 - 0.06 * j
        if a[1] > 0:
            cv.line(_through([-0.14, y + 0.01], [0, y - 0.012], [0.14, y + 0.01], 8),
                    _mix(skin, line_c * 0.8, 0.3 + 0.7 * a[1]), 0.012 + 0.008 * a[1])
        if a[2] > 0 and j < 2:
            for s in (-1, 1):
                yy2 = ey - 0.3 - 0.06 * j
                arc = _through([s * 0.17, yy2], [s * 0.29, yy2 - 0.03], [s * 0.41, yy2 + 0.01], 8)
                cv.line(arc,
                        _mix(skin, line_c * 0.8, 0.3 + 0.7 * a[2]), 0.012 + 0.008 * a[2])

    # Cheeks (AU6 lifts and rounds them; AU12 adds a little).
    lift = 0.08 * a[6] + 0.03 * a[12]
    for s in (-1, 1):
        cv.poly(_ellipse(s * (ex + 0.02), 0.2 - lift, 0.13, 0.09 + 0.02 * a[6]),
                _mix(skin, np.array([230, 120, 110]), 0.12 + 0.25 * a[6]))

    # Eyes.
    pts: dict[str, tuple[float, float]] = {}  # the anchors, in face units
    u = p["eu"] * (1 + 1.6 * a[5] - 0.45 * a[7] - 0.3 * a[6] - 0.25 * a[4])
    lo_open = p["el"] * (1 - 0.8 * a[7] - 0.55 * a[6])
    for s in (-1, 1):
        cx = s * ex
        inner, outer = [cx - s * ew, ey + 0.005], [cx + s * ew, ey - 0.005]
        top = _through(inner, [cx, ey - u], outer, 12)
        bot = _through(outer, [cx, ey + max(lo_open, 0.004)], inner, 12)
        cv.poly(np.concatenate([top, bot]), (240, 238, 232))
        side = "r" if s < 0 else "l"  # the subject's right eye is on the image's left
        pts.update({f"eye_{side}": (cx, ey), f"eye_upper_{side}": (cx, ey - u),
                    f"eye_lower_{side}": (cx, ey + max(lo_open, 0.004)),
                    f"eye_outer_{side}": tuple(outer)})
        r = 0.052
        cv.poly(_ellipse(cx, ey + 0.004, r, r, n=20), p["iris"])
        cv.poly(_ellipse(cx, ey + 0.004, r * 0.45, r * 0.45, n=14), (15, 12, 12))
        # Lids cover what lies outside the aperture (keeps the iris inside the eye).
        cv.poly(np.concatenate([top, [[outer[0] + s * 0.02, ey - 0.13], [inner[0] - s * 0.02,
                                                                          ey - 0.13]]]), skin)
        cv.poly(np.concatenate([bot, [[inner[0] - s * 0.02, ey + 0.1],
                                      [outer[0] + s * 0.02, ey + 0.1]]]), skin)
        cv.line(top, (30, 22, 20), 0.016)
        cv.line(bot, _mix(line_c, (30, 22, 20), a[7]), 0.008 + 0.014 * a[7])
        crease = 0.035 * (1 - 0.7 * a[5])
        cv.line(_through([inner[0], ey - 0.01], [cx, ey - u - crease], [outer[0], ey - 0.015], 10),
                line_c, 0.008)
        if a[6] > 0:  # crow's feet and the bulge under the eye
            for d in (-0.5, 0.0, 0.5):
                o = np.array(outer) + [s * 0.03, 0]
                cv.line([o, o + [s * 0.09 * math.cos(d), 0.09 * math.sin(d)]],
                        _mix(skin, line_c * 0.8, 0.2 + 0.8 * a[6]), 0.012)
            cv.line(_through([cx - s * ew * 0.8, ey + 0.06 - 0.02 * a[6]],
                             [cx, ey + 0.09 - 0.03 * a[6]], [cx + s * ew * 0.9, ey + 0.05], 8),
                    _mix(skin, line_c, a[6]), 0.01)

    # Brows: AU1 lifts the inner ends, AU2 the outer, AU4 lowers and draws them together.
    by = ey - p["bh"]
    for s in (-1, 1):
        inner = [s * (p["bx"] - 0.05 * a[4]), by - 0.13 * a[1] + 0.11 * a[4] + 0.02 * a[9]]
        mid = [s * (ex - 0.01), by - 0.035 - 0.04 * a[1] - 0.09 * a[2] + 0.08 * a[4]]
        outer = [s * (ex + ew + 0.04), by + 0.01 - 0.13 * a[2] + 0.04 * a[4]]
        c = _through(inner, mid, outer, 12)
        side = "r" if s < 0 else "l"
        pts.update({f"brow_inner_{side}": tuple(inner), f"brow_mid_{side}": tuple(c[6]),
                    f"brow_outer_{side}": tuple(outer)})
        w = np.linspace(1.0, 0.55, 12)[:, None] * p["bt"]
        cv.poly(np.concatenate([c - [0, 1] * w / 2, (c + [0, 1] * w / 2)[::-1]]), p["hair"] * 0.9)
    if a[4] > 0:  # vertical furrows between the brows
        for s in (-1, 1):
            cv.line([[s * 0.03, by - 0.06], [s * 0.045, by + 0.12]],
                    _mix(skin, line_c * 0.6, 0.4 + 0.6 * a[4]), 0.018)

    # Nose: AU9 wrinkles the bridge and lifts the nostrils; AU10 lifts them a little.
    nb = p["nl"] - 0.04 * a[9] - 0.015 * a[10]
    nw = p["nw"] * (1 + 0.25 * a[9])
    for s in (-1, 1):
        side = _through([s * 0.045, ey], [s * 0.05, (ey + nb) / 2], [s * 0.06, nb - 0.03], 6)
        cv.line(side,
                _mix(skin, line_c, 0.35), 0.01)
        cv.poly(_ellipse(s * (nw + 0.02), nb, nw, 0.035), skin * 0.9)
        cv.poly(_ellipse(s * 0.032, nb + 0.022, 0.022, 0.011, n=12), skin * 0.35)
    cv.poly(_ellipse(0, nb - 0.005, 0.045, 0.04), skin * 0.97)
    pts.update({"nose_root": (0.0, ey), "nose_tip": (0.0, nb - 0.005),
                "nose_wing_r": (-(2 * nw + 0.02), nb), "nose_wing_l": (2 * nw + 0.02, nb)})
    if a[9] > 0:
        for j in range(3):
            y = ey + 0.015 + 0.035 * j
            cv.line(_through([-0.06, y + 0.01], [0, y - 0.01], [0.06, y + 0.01], 6),
                    _mix(skin, line_c * 0.7, 0.3 + 0.7 * a[9]), 0.012)

    # Mouth geometry.
    my = p["my"] + 0.02 * a[25]
    mw = p["mw"]
    cxm = mw * (1 + 0.28 * a[12] + 0.4 * a[20] - 0.18 * a[14] - 0.3 * a[23] - 0.05 * a[24]
                - 0.05 * a[10])
    cy = my - 0.1 * a[12] + 0.09 * a[15] + 0.02 * a[20] - 0.01 * a[14] - 0.02 * a[17]
    gap = 0.065 * a[25] + 0.12 * a[26] * (0.55 + 0.45 * (a[25] > 0))
    thin_u = 1 - 0.55 * a[23] - 0.65 * a[24] - 0.35 * a[20] - 0.25 * a[12]
    thin_l = 1 - 0.55 * a[23] - 0.65 * a[24] - 0.35 * a[20] + 0.35 * a[17]
    up_y = my - 0.06 * a[10] - 0.3 * gap * (a[25] > 0) - 0.02 * a[9]
    # The lower lip and the chin ride down with the jaw (AU26), not only with the lips parting.
    low_y = my + gap * 0.7 + 0.25 * jaw - 0.05 * a[17]
    ut, lt = p["ut"] * max(thin_u, 0.25), p["lt"] * max(thin_l, 0.25)
    L, R = [-cxm, cy], [cxm, cy]
    lip_up = _through(L, [0, up_y], R, 14)
    pts.update({"mouth_corner_r": tuple(L), "mouth_corner_l": tuple(R),
                "lip_upper": (0.0, up_y - ut), "lip_lower": (0.0, low_y + lt),
                "mouth": (0.0, (up_y + low_y) / 2), "chin": (0.0, 0.05 + fh)})
    lip_lo = _through(R, [0, low_y], L, 14)

    # Nasolabial folds deepen with AU10, AU12, AU9 and AU6.
    fold = 0.15 + 0.85 * min(1.0, a[10] + a[12] + 0.5 * a[9] + 0.4 * a[6])
    for s in (-1, 1):
        cv.line(_through([s * (nw * 2 + 0.04), nb - 0.02], [s * (cxm * 0.75 + 0.09), (nb + cy) / 2],
                         [s * (cxm + 0.05), cy + 0.05], 10), _mix(skin, line_c, fold), 0.014)

    lip_c = _mix(skin, np.array([170, 60, 60]), 0.55)
    if gap > 0.006:
        cv.poly(np.concatenate([lip_up, lip_lo]), (60, 15, 20))
        th = min(gap * 0.5, 0.04)
        cv.poly(np.concatenate([lip_up, (lip_up + [0, th])[::-1]]), (235, 232, 220))
    elif a[10] > 0.3:  # upper teeth show under a raised upper lip
        cv.poly(np.concatenate([lip_up, (lip_up + [0, 0.02 * a[10]])[::-1]]), (235, 232, 220))
    upper = np.concatenate([_through(L, [0, up_y - ut], R, 14), lip_up[::-1]])
    cv.poly(upper, lip_c)
    lower = np.concatenate([lip_lo, _through(L, [0, low_y + lt], R, 14)])
    cv.poly(lower, lip_c * 1.05)
    cv.line(lip_up, _mix(lip_c * 0.5, (40, 20, 20), a[24]), 0.008 + 0.016 * a[24])
    if a[23] > 0:  # tightened lips: the red narrows and small vertical lines appear
        for xx in np.linspace(-0.6, 0.6, 5) * cxm:
            cv.line([[xx, up_y - ut * 0.8], [xx, low_y + lt * 0.8]],
                    _mix(lip_c, lip_c * 0.45, a[23]), 0.009)
    if a[24] > 0:  # pressed lips bulge the skin above and below
        cv.line(_through([-cxm * 0.8, up_y - ut - 0.03], [0, up_y - ut - 0.04],
                         [cxm * 0.8, up_y - ut - 0.03], 8), _mix(skin, line_c, a[24]), 0.012)
        cv.line(_through([-cxm * 0.7, low_y + lt + 0.03], [0, low_y + lt + 0.045],
                         [cxm * 0.7, low_y + lt + 0.03], 8), _mix(skin, line_c, a[24]), 0.012)
    for s in (-1, 1):
        if a[14] > 0:  # dimples beside the corners
            cv.line(_through([s * (cxm + 0.015), cy - 0.035], [s * (cxm + 0.04), cy],
                             [s * (cxm + 0.015), cy + 0.035], 6), _mix(skin, line_c * 0.5, a[14]),
                    0.024)
        if a[20] > 0:  # stretched lips: skin lines pulled out sideways from the corners
            for dy in (-0.02, 0.025):
                cv.line([[s * (cxm + 0.02), cy + dy], [s * (cxm + 0.11), cy + dy * 1.8]],
                        _mix(skin, line_c * 0.7, a[20]), 0.012)
        if a[15] > 0:  # skin below the corners pulled down
            cv.line([[s * cxm, cy + 0.015], [s * (cxm + 0.01), cy + 0.1]],
                    _mix(skin, line_c * 0.7, a[15]), 0.013)
    # Chin: AU17 pushes it up, deepens the groove under the lip and dimples the skin.
    cb = low_y + lt
    groove = 0.15 + 0.85 * a[17]
    cv.line(_through([-0.09, cb + 0.05], [0, cb + 0.035 - 0.02 * a[17]], [0.09, cb + 0.05], 8),
            _mix(skin, line_c, groove), 0.012)
    if a[17] > 0:
        cv.line(_through([-0.13, cb + 0.2], [0, cb + 0.1], [0.13, cb + 0.2], 8),
                _mix(skin, line_c, a[17]), 0.012)

    if landmarks:
        marks = cv.xy([pts[a] for a in ANCHORS]) + 0.5
        marks[ANCHORS.index("chin")] = cv.xy([pts["chin"]], feature=False)[0] + 0.5
    if rng is None:
        return (img, marks) if landmarks else img
    # Photometric degradations: lighting gradient, noise, blur (JPEG is applied when saving).
    f = img.astype(np.float32)
    g = rng.normal(0, 0.25 + 0.2 * difficulty, 2)
    xs = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    light = 1 + g[0] * xs[None, :] + g[1] * xs[:, None]
    f *= (light * rng.uniform(0.8, 1.15))[..., None]
    f += rng.normal(0, rng.uniform(1, 4 + 6 * difficulty), f.shape).astype(np.float32)
    img = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 + 0.4 * difficulty:
        sig = rng.uniform(0.3, 0.6 + 0.8 * difficulty) * size / 160
        img = cv2.GaussianBlur(img, (0, 0), sig)
    return (img, marks) if landmarks else img
