"""``hiva explain``: where the model looked for each AU, and which descriptions matched.

Reads one image and a checkpoint (run or export folder). Writes into ``--out``:

- ``AU01.png`` … one per AU: the DDCA text←vision activation map of that AU (its text prototype's
  attention over the visual tokens, the paper's qualitative figure; the AU-query pooling map when
  the model has no DDCA) upsampled bilinearly and overlaid on the face the model saw (the aligned
  crop, or the whole frame with ``--no-align``, after the evaluation resize + centre crop), with
  the probability and the best-matching descriptions;
- ``grid.png``: the face and every AU's map in one figure;
- ``explain.json``: probabilities, thresholds, map peak positions and the matched descriptions.

"Descriptions the model drew on": the weights of this image's DDCA vision←text attention (AU
i's visual node attending over AU i's descriptions, head-averaged), the quantity the forward pass
uses to mix the descriptions into the node; ranked over the evaluation subset the model read
(``eval_text_per_au`` rows per AU, as in ``hiva predict``). Uniform weights (1/M) mean the image
made no choice. With ``text_mode shuffled`` the texts are those the AU was given (another AU's);
with ``learned`` or ``random`` there are no texts, and a model without DDCA draws on none.

Each map is scaled to its own maximum for display (maps are distributions over patches, so a
diffuse map looks as bright as a peaked one; the title gives the peak share of attention).

AU regions (``hiva.regions``): with the face's landmarks — the aligner's face mesh, or the
row of ``--manifest`` whose path is the image (a synthetic set's exact landmarks) — each AU's
region is outlined in white and its map is scored against it (energy in the region, with its
chance level, and whether the peak cell hits it; in the title and ``explain.json``). A model
trained with a region prior and no landmarks for this face outlines its average face's region
(dashed), unscored.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hiva.data.align import LANDMARK_SCHEME
from hiva.errors import HivaError
from hiva.facs import AUS, au_column
from hiva.model.archs import get_arch
from hiva.predict.detector import Detector
from hiva.predict.media import Unreadable, read_image
from hiva.regions import au_discs, localisation, region_mask
from hiva.runtime import claim_dir, release_dir, write_text_atomic

EXPLAINED = "explain.json"  # written last: a folder holding it is an earlier explain's
AU_PNG = re.compile(r"AU\d+\.png")


def matched_descriptions(det, out, top_k: int) -> dict[int, list[tuple[float, str]]]:
    """{au: [(attention weight, text), ...]} best first (see the module docstring)."""
    ld = det.loaded
    texts, rows, w = ld.text.texts, ld.text_rows, out.text_attention
    if not texts or rows is None or w is None:
        return {a: [] for a in ld.aus}
    res = {}
    for i, a in enumerate(ld.aus):
        weights = w[0, i, :len(rows[i])].float().cpu().tolist()
        ranked = sorted(zip(weights, rows[i]), key=lambda t: -t[0])[:top_k]
        res[a] = [(float(v), texts[a][r]) for v, r in ranked]
    return res


def _overlay(ax, face, amap, title: str, region=None, dashed: bool = False) -> None:
    ax.imshow(blend(face, amap))
    if region is not None and region.any():
        ax.contour(region.astype(float), levels=[0.5], colors="white", linewidths=1.2,
                   linestyles="--" if dashed else "-")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _manifest_landmarks(manifest, image) -> tuple[np.ndarray | None, str | None]:
    """(landmarks, scheme) of the row of ``manifest`` whose image is ``image``."""
    from hiva.data.manifest import read_manifest

    df = read_manifest(manifest)
    scheme = (df.attrs.get("hiva") or {}).get("landmark_scheme")
    if scheme is None or "landmarks" not in df.columns:
        raise HivaError(f"{manifest} holds no landmarks; render it with this hiva's `hiva data "
                        "synth` or `hiva data align`, or leave out --manifest")
    want = str(Path(image).resolve())
    hit = df[[str(Path(p).resolve()) == want for p in df["path"]]]
    if hit.empty:
        raise HivaError(f"{image} is not a row of {manifest}; pass the manifest it comes from")
    raw = hit["landmarks"].iloc[0]
    if not isinstance(raw, (list, tuple, np.ndarray)):  # a frame the mesh missed
        return None, scheme
    return np.asarray(raw, dtype=np.float32).reshape(-1, 2), scheme


def face_regions(det, face: np.ndarray, points, scheme: str):
    """AU region discs (1×N×C×3) in the model's input pixels for landmarks ``points`` (K×2) of
    ``face`` (the image before the model's transform), moved by the same transform."""
    import torch
    from PIL import Image
    from torchvision import tv_tensors

    kp = tv_tensors.KeyPoints(np.asarray(points, np.float32), canvas_size=face.shape[:2])
    _, moved = det.transform(Image.fromarray(np.ascontiguousarray(face)), kp)
    return torch.from_numpy(au_discs(moved.numpy(), scheme, det.aus)).unsqueeze(0)


@dataclass
class FaceMaps:
    """One face explained (``explain_face``): what ``hiva explain`` and ``hiva app`` show."""

    aus: tuple[int, ...]
    face: np.ndarray  # the face the model saw, H×W×3 float in [0, 1] (after its transform)
    probs: np.ndarray  # N
    thresholds: list[float]
    maps: np.ndarray  # N×H×W, each AU's map upsampled to the face and scaled to its maximum
    cells: np.ndarray  # N×h×w, the maps as the model made them (each sums to 1)
    peak_share: np.ndarray  # N, the largest cell's share of each map
    matches: dict[int, list[tuple[float, str]]]  # au -> [(attention weight, text)], best first
    outlines: list  # N region masks at the face's size, or None per AU
    scores: list | None  # energy, pointing, energy chance, pointing chance (N each), or None
    dashed: bool  # the outlines are a prior model's average face, not this face's

    @property
    def on(self) -> np.ndarray:
        return self.probs >= np.asarray(self.thresholds)

    def peak_yx(self, i: int) -> list[float]:
        """AU ``i``'s peak cell centre as a fraction of the face (y, x)."""
        h, w = self.cells.shape[1:]
        iy, ix = np.unravel_index(int(np.argmax(self.cells[i])), (h, w))
        return [float((iy + 0.5) / h), float((ix + 0.5) / w)]


def explain_face(det, face: np.ndarray, points=None, scheme: str | None = None,
                 top_k: int = 3) -> FaceMaps:
    """Run ``det``'s model on one face image (an aligned crop, or a whole frame without
    alignment) and gather its maps, probabilities, matched descriptions and, with landmarks
    ``points`` (K×2 in the face's pixels, of ``scheme``), each AU's region and how much of the
    map falls in it."""
    import torch
    import torch.nn.functional as F

    ld = det.loaded
    regions = None
    if points is not None and np.isfinite(points).all():
        regions = face_regions(det, face, points, scheme)
    x = det.to_tensor(face).unsqueeze(0)
    o = det.forward(x, regions)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in ld.model.normalisation())
    shown = (x[0].cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    h, w = o.map_size
    size = shown.shape[:2]
    maps = o.activation_maps[0].float().reshape(-1, 1, h, w).cpu()
    peak_share = maps.flatten(1).max(1).values.numpy()
    up = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
    up = up / np.maximum(up.reshape(len(up), -1).max(1), 1e-12)[:, None, None]
    outlines, scores, dashed = _outlines(ld.model, regions, o, size)
    return FaceMaps(aus=tuple(ld.aus), face=shown, probs=o.probs[0].float().cpu().numpy(),
                    thresholds=list(ld.thresholds), maps=up, cells=maps[:, 0].numpy(),
                    peak_share=peak_share, matches=matched_descriptions(det, o, top_k),
                    outlines=outlines, scores=scores, dashed=dashed)


def blend(face: np.ndarray, amap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``amap`` (H×W in [0, 1]) in the jet colour map over ``face`` (H×W×3 in [0, 1]), as
    matplotlib draws an ``alpha`` layer: H×W×3 float."""
    from matplotlib import colormaps

    return (1 - alpha) * face + alpha * colormaps["jet"](np.clip(amap, 0, 1))[..., :3]


def overlay_image(fm: FaceMaps, i: int) -> np.ndarray:
    """AU ``i``'s map over the face with its region's outline in white (dotted for an average
    face's), as an H×W×3 uint8 image (for the web page; the PNGs draw the outline with
    matplotlib)."""
    from scipy.ndimage import binary_erosion

    img = blend(fm.face, fm.maps[i])
    region = fm.outlines[i]
    if region is not None and region.any():
        edge = region & ~binary_erosion(region, iterations=2)
        if fm.dashed:
            yy, xx = np.indices(edge.shape)
            edge &= ((yy + xx) // 4) % 2 == 0
        img[edge] = 1.0
    return (img * 255).round().astype(np.uint8)


def explain(image, checkpoint, out, *, fold: int | None = None, device: str = "auto",
            align: bool | None = None, top_k: int = 3, text_bank: str | None = None,
            threshold: str | float = "auto", manifest: str | None = None) -> dict:
    """Write the per-AU PNGs, ``grid.png`` and ``explain.json`` for ``image`` into ``out``;
    ``manifest``: the manifest holding the image, for its landmarks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(image)
    if not path.is_file():
        raise HivaError(f"image {image} does not exist; pass an image file")
    # a file, an unwritable place, or a folder with a grid.png or AUxx.png not ours: before
    # the model loads; a rerun (another image) replaces the last one's files
    outdir = claim_dir(out, "--out", "`hiva explain`", lambda p: (p / EXPLAINED).is_file(),
                       lambda p: sorted(f.name for f in p.glob("*")
                                        if f.name == "grid.png" or AU_PNG.fullmatch(f.name)))
    try:
        rgb = read_image(str(path))
    except Unreadable as e:
        raise HivaError(f"{image} is not a readable image ({e}); pass a JPEG or PNG") from None
    det = Detector(checkpoint, fold=fold, device=device, batch_size=1, align=align,
                   threshold=threshold, text_bank=text_bank)
    face, conf, points = det.prepare(rgb, landmarks=True)
    if face is None and det.finder.last_skip:
        raise HivaError(f"the face in {image} is too small to score ({det.finder.last_skip}); "
                        "pass a larger image")
    if face is None:
        raise HivaError(f"no face found in {image}; pass a clearer photo, or --no-align if it is "
                        "already a face crop")
    scheme = LANDMARK_SCHEME if points is not None else None
    if manifest is not None:
        if det.align:
            raise HivaError("--manifest landmarks are in the image's own pixels and this model "
                            "aligns faces first; pass --no-align with --manifest (or leave "
                            "--manifest out to use the aligner's face mesh)")
        points, scheme = _manifest_landmarks(manifest, path)
    ld = det.loaded
    fm = explain_face(det, face, points, scheme, top_k)
    shown, up, probs, matches = fm.face, fm.maps, fm.probs, fm.matches
    outlines, scores, dashed, peak_share = fm.outlines, fm.scores, fm.dashed, fm.peak_share
    h, w = fm.cells.shape[1:]

    written, record = [], {"image": str(image), "checkpoint": str(ld.weights),
                           "align": ld.align, "confidence": conf, "aus": {}}
    for i, a in enumerate(ld.aus):
        name = AUS[a].name if a in AUS else ""
        on = fm.on[i]
        fig = plt.figure(figsize=(9, 4.2))
        ax = fig.add_axes((0.02, 0.05, 0.42, 0.82))
        _overlay(ax, shown, up[i], f"{au_column(a)} {name}\np = {probs[i]:.2f} "
                 f"({'on' if on else 'off'} at {ld.thresholds[i]:.2f}){_score_line(scores, i)}",
                 outlines[i], dashed)
        if get_arch(ld.mc.arch).maps != "attention":  # ME-GraphAU: its per-AU feature energy
            lines = [f"Peak share of the AU's feature energy: {peak_share[i]:.3f} of {h * w}",
                     "patches (ME-GraphAU has no attention map: this is", "the mean of its "
                     "AU-specific features per patch)"]
        else:
            lines = [f"Peak attention share: {peak_share[i]:.3f} of {h * w} patches", "",
                     "Descriptions it drew on (DDCA attention weight;",
                     f"uniform = {1 / max(len(ld.text_rows[i]), 1) if ld.text_rows else 0:.2f}):"]
            if not matches[a]:
                lines.append("(none: the model reads no description texts)")
        for s, t in matches[a]:
            lines += textwrap.wrap(f"{s:.2f}  {t}", 58, subsequent_indent="      ")
        fig.text(0.47, 0.86, "\n".join(lines), va="top", ha="left", fontsize=8.5,
                 family="monospace")
        f = outdir / f"{au_column(a)}.png"
        fig.savefig(f, dpi=110)
        plt.close(fig)
        written.append(f)
        record["aus"][au_column(a)] = {
            "probability": float(probs[i]), "threshold": ld.thresholds[i], "on": bool(on),
            "peak_share": float(peak_share[i]),
            "peak_yx": fm.peak_yx(i),  # fraction of the crop
            "matched": [{"attention": s, "text": t} for s, t in matches[a]],
        }
        if scores is not None and np.isfinite(scores[0][i]):
            record["aus"][au_column(a)]["region"] = {
                k: float(v[i]) for k, v in zip(("energy", "pointing", "energy_chance",
                                                "pointing_chance"), scores)}

    cols = 5
    rows = -(-(len(ld.aus) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows))
    axes = np.atleast_1d(axes).ravel()
    axes[0].imshow(shown)
    axes[0].set_title("input face", fontsize=9)
    axes[0].axis("off")
    for i, a in enumerate(ld.aus):
        sc = ("" if scores is None or not np.isfinite(scores[0][i]) else
              f" in {scores[0][i]:.2f}{' ✓' if scores[1][i] > 0 else ' ✗'}")
        _overlay(axes[i + 1], shown, up[i], f"{au_column(a)} p={probs[i]:.2f}{sc}", outlines[i],
                 dashed)
    for ax in axes[len(ld.aus) + 1:]:
        ax.axis("off")
    fig.suptitle(f"DDCA activation maps — {path.name}"
                 + ("" if scores is None else " (white: AU region; in = map energy in it, "
                    "✓ = peak inside)"), fontsize=10)
    fig.tight_layout()
    grid = outdir / "grid.png"
    fig.savefig(grid, dpi=100)
    plt.close(fig)
    written.append(grid)
    write_text_atomic(outdir / EXPLAINED, json.dumps(record, indent=1))
    release_dir(outdir)
    record["written"] = [str(p) for p in written]
    return record


def _outlines(model, regions, o, size):
    """(per-AU region masks at display size or None, localisation scores or None, dashed):
    the face's own regions, else a prior model's average face (dashed, unscored)."""
    import torch

    n = o.probs.shape[1]
    discs, dashed, scores = None, False, None
    if regions is not None:
        discs = regions[0].numpy()
        loc = localisation(o.activation_maps.float().cpu(), o.region_frac.float().cpu())
        scores = [t[0].numpy() for t in loc]
    elif getattr(model, "uses_bias", False):
        tmpl = model.region_template.detach().float().cpu()
        if bool(torch.isfinite(tmpl).any()):
            discs, dashed = tmpl.numpy(), True
    if discs is None:
        return [None] * n, None, False
    return [region_mask(discs[i], size[0], size[1]) for i in range(n)], scores, dashed


def _score_line(scores, i: int) -> str:
    if scores is None or not np.isfinite(scores[0][i]):
        return ""
    return (f"\nregion: energy {scores[0][i]:.2f} (chance {scores[2][i]:.2f}), peak "
            f"{'inside' if scores[1][i] > 0 else 'outside'}")
