"""AU regions on face landmarks, at any resolution.

A manifest may carry a ``landmarks`` column (x0, y0, x1, y1, ... in pixels of the image file)
whose layout its metadata names (``landmark_scheme``): ``hiva-synth`` (the named points the
synthetic renderer writes, exact) or ``mediapipe-478`` (MediaPipe's face mesh, written by ``hiva
data align``). A scheme maps each anchor of ``ANCHORS`` to the landmark(s) it averages.

Each AU's region is the union of discs around anchors (``hiva.facs.REGIONS``; offsets and radii in
eye distances, so a region scales and turns with the face). ``au_discs`` turns one face's landmarks
into discs (x, y, r in pixels); ``disc_fractions`` rasterises discs onto a grid as the share of
each cell inside the region (the prior on a feature map, and the region a map is scored against).
Region geometry follows the face through flips, crops and resizes because the landmarks travel
with the image through the transforms (``hiva.data.transforms``).
"""

from __future__ import annotations

import numpy as np

from hiva.facs import ANCHORS, REGIONS

# MediaPipe face-mesh indices averaged for each anchor (478 points with refined irises).
MEDIAPIPE_478: dict[str, tuple[int, ...]] = {
    "eye_r": (33, 133), "eye_l": (362, 263),
    "eye_upper_r": (159,), "eye_upper_l": (386,),
    "eye_lower_r": (145,), "eye_lower_l": (374,),
    "eye_outer_r": (33,), "eye_outer_l": (263,),
    "brow_inner_r": (107, 55), "brow_inner_l": (336, 285),
    "brow_mid_r": (105, 52), "brow_mid_l": (334, 282),
    "brow_outer_r": (70, 46), "brow_outer_l": (300, 276),
    "nose_root": (168,), "nose_tip": (1,),
    "nose_wing_r": (64,), "nose_wing_l": (294,),  # the outer edge of each ala
    "mouth_corner_r": (61,), "mouth_corner_l": (291,),
    "lip_upper": (0,), "lip_lower": (17,), "mouth": (13, 14), "chin": (152,),
}

SCHEMES: dict[str, dict[str, tuple[int, ...]]] = {
    "hiva-synth": {a: (i,) for i, a in enumerate(ANCHORS)},
    "mediapipe-478": MEDIAPIPE_478,
}
SCHEME_POINTS = {"hiva-synth": len(ANCHORS), "mediapipe-478": 478}


def anchors(points: np.ndarray, scheme: str) -> dict[str, np.ndarray]:
    """Named anchor points (x, y) from one face's landmarks (K×2) in ``scheme``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    idx = SCHEMES[scheme]
    return {a: pts[list(idx[a])].mean(0) for a in ANCHORS}


def max_discs(aus, table: dict | None = None) -> int:
    """The most discs any of ``aus`` has in ``table`` ({au: discs}; None: ``hiva.facs.REGIONS``)."""
    table = REGIONS if table is None else table
    return max([len(table.get(a, ())) for a in aus] + [1])


def au_discs(points, scheme: str, aus, table: dict | None = None) -> np.ndarray:
    """N×C×3 discs (x, y, r) in the landmarks' pixels for ``aus``; rows of NaN pad AUs with
    fewer discs (or no region). NaN landmarks give all NaN. ``table``: {au: discs} (None: the
    FACS table ``hiva.facs.REGIONS``; ``hiva.text_regions`` makes one from descriptions)."""
    table = REGIONS if table is None else table
    c = max_discs(aus, table)
    out = np.full((len(aus), c, 3), np.nan, dtype=np.float32)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        return out
    a = anchors(pts, scheme)
    eye_mid = (a["eye_r"] + a["eye_l"]) / 2
    iod = float(np.linalg.norm(a["eye_l"] - a["eye_r"]))
    down = a["mouth"] - eye_mid
    down = down / max(float(np.linalg.norm(down)), 1e-6)
    side = np.array([-down[1], down[0]])  # perpendicular to the face's vertical axis
    for i, au in enumerate(aus):
        for j, d in enumerate(table.get(au, ())):
            p = a[d.anchor]
            s = float(np.sign(np.dot(p - eye_mid, side))) or 1.0  # away from the midline
            centre = p + iod * (d.out * s * side + d.down * down)
            out[i, j] = (centre[0], centre[1], d.radius * iod)
    return out


def disc_fractions(discs, size: int, grid: tuple[int, int], sub: int = 8):
    """Share of each grid cell inside each AU's region: discs (...×C×3, pixels of a ``size``
    square input; NaN rows ignored) → ...×h×w in [0, 1]. Torch in and out (any device) or
    numpy in and out. Each cell is sampled at sub×sub points; a disc too small to hold any
    sample counts its area share in the cell holding its centre, so no region vanishes on a
    coarse grid (no data-dependent branch: nothing waits on the device)."""
    import torch

    as_numpy = not torch.is_tensor(discs)
    d = torch.as_tensor(discs, dtype=torch.float32)
    h, w = grid
    ys = (torch.arange(h * sub, device=d.device, dtype=torch.float32) + 0.5) * (size / (h * sub))
    xs = (torch.arange(w * sub, device=d.device, dtype=torch.float32) + 0.5) * (size / (w * sub))
    cx, cy, r = d[..., 0, None, None], d[..., 1, None, None], d[..., 2, None, None]
    dist2 = (xs.view(1, -1) - cx) ** 2 + (ys.view(-1, 1) - cy) ** 2  # ...×C×H×W
    inside = (dist2 <= r * r) & torch.isfinite(r)
    missed = ~inside.flatten(-2).any(-1)  # ...×C: discs no sample fell in
    lead = inside.shape[:-3]
    frac = inside.any(dim=-3).float().reshape(*lead, h, sub, w, sub).mean(dim=(-3, -1))
    ch, cw = size / h, size / w
    iy = torch.arange(h, device=d.device, dtype=torch.float32).view(-1, 1)
    ix = torch.arange(w, device=d.device, dtype=torch.float32).view(1, -1)
    own = ((torch.floor(cy / ch) == iy) & (torch.floor(cx / cw) == ix)).float()  # ...×C×h×w
    area = (torch.pi * r * r / (ch * cw)).clamp(max=1.0).nan_to_num(0.0)
    small = own * area * missed[..., None, None].float()
    frac = torch.maximum(frac, small.amax(dim=-3))
    return frac.numpy() if as_numpy else frac


def region_mask(discs, height: int, width: int) -> np.ndarray:
    """Boolean H×W mask of one AU's discs (C×3, pixels) at image resolution (for drawing)."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    m = np.zeros((height, width), bool)
    for x, y, r in np.asarray(discs, dtype=np.float64):
        if np.isfinite(r):
            m |= (xx - x) ** 2 + (yy - y) ** 2 <= r * r
    return m


def region_prior(frac, floor: float):
    """(log prior, has): frac ...×P (cell shares) → the prior (1 − floor)·frac/Σfrac + floor/P
    (``floor`` of its mass spread evenly, the rest over the region) as log probabilities over P,
    and whether each map has a region at all (False → no prior: log prior 0, which leaves a
    softmax unchanged)."""
    import torch

    has = frac.sum(-1) > 0
    n = frac.shape[-1]
    p = (1 - floor) * frac / frac.sum(-1, keepdim=True).clamp_min(1e-12) + floor / n
    logp = torch.log(p)
    return torch.where(has.unsqueeze(-1), logp, torch.zeros_like(logp)), has


def map_kl(maps, frac, floor: float):
    """Mean KL(map ‖ prior) over the maps (...×P, rows sum to 1) that have a region; 0 (with
    the graph connected) when none has."""
    import torch

    logp, has = region_prior(frac.float(), floor)
    m = maps.float()
    kl = (m * (torch.log(m.clamp_min(1e-8)) - logp)).sum(-1)
    w = has.to(kl.dtype)
    return (kl * w).sum() / w.sum().clamp_min(1.0)


def localisation(maps, frac):
    """Per map (...×P): (energy, pointing, energy chance, pointing chance), NaN where there is
    no region. energy = the map's mass weighted by each cell's share inside the region (a
    uniform map scores the chance: the region's share of the image); pointing = 1 when the map's
    peak cell overlaps the region (chance: the share of cells that overlap it)."""
    import torch

    m, f = maps.float(), frac.float()
    has = f.sum(-1) > 0
    nan = torch.full_like(f[..., 0], float("nan"))
    energy = torch.where(has, (m * f).sum(-1) / m.sum(-1).clamp_min(1e-12), nan)
    peak = m.argmax(-1, keepdim=True)
    hit = (f.gather(-1, peak).squeeze(-1) > 0).float()
    pointing = torch.where(has, hit, nan)
    return (energy, pointing, torch.where(has, f.mean(-1), nan),
            torch.where(has, (f > 0).float().mean(-1), nan))
