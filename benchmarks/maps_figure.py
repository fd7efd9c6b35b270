"""One figure of activation maps across the arms of a maps sweep: per AU, a test frame where that
AU is on (the one with the fewest other AUs, then the strongest intensity), and each arm's map
of that AU over the face with the AU's region outlined (white) and scored, as ``hiva explain
--manifest`` draws them.

    python benchmarks/maps_figure.py out/maps --aus 1 2 4 12 24 \
        --arms none_stride32 none bias kl --seed 0 --out docs/maps_grid.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def pick_frames(manifest: str, test_subjects, aus) -> dict[int, str]:
    from hiva.data.manifest import read_manifest
    from hiva.facs import au_column

    df = read_manifest(manifest)
    t = df[df["subject"].isin(set(test_subjects))]
    cols = [c for c in t.columns if c.startswith("AU") and len(c) == 4]
    out = {}
    for a in aus:
        c = au_column(a)
        on = t[t[c] == 1].assign(n=lambda x: x[cols].sum(axis=1))
        on = on.sort_values(["n", f"{c}_intensity"], ascending=[True, False])
        out[a] = on["path"].iloc[0]
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    from hiva.predict.detector import Detector
    from hiva.predict.explain import _manifest_landmarks, _overlay, face_regions
    from hiva.predict.media import read_image
    from hiva.regions import localisation, region_mask

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--aus", type=int, nargs="+", default=[1, 2, 4, 12, 24])
    ap.add_argument("--arms", nargs="+", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    runs = {arm: a.root / arm / f"seed{a.seed}" for arm in a.arms}
    first = json.loads((next(iter(runs.values())) / "fold1" / "metrics.json").read_text())
    import yaml

    cfg = yaml.safe_load((next(iter(runs.values())) / "config.yaml").read_text())
    frames = pick_frames(cfg["data"], first["subject_ids"]["test"], a.aus)
    fig, axes = plt.subplots(len(a.aus), len(a.arms) + 1,
                             figsize=(2.3 * (len(a.arms) + 1), 2.5 * len(a.aus)))
    for c, (arm, run) in enumerate(runs.items()):
        det = Detector(run, device="cpu", align=False)
        for r, au in enumerate(a.aus):
            path = frames[au]
            face = read_image(path)
            pts, scheme = _manifest_landmarks(cfg["data"], path)
            regions = face_regions(det, face, pts, scheme)
            x = det.to_tensor(face).unsqueeze(0)
            o = det.forward(x, regions)
            i = det.aus.index(au)
            h, w = o.map_size
            size = x.shape[-1]
            m = o.activation_maps[0, i].float().reshape(1, 1, h, w)
            up = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            up = (up / up.max().clamp_min(1e-12)).numpy()
            mean, std = (np.array(v).reshape(3, 1, 1) for v in det.loaded.model.normalisation())
            shown = np.clip(x[0].numpy() * std + mean, 0, 1).transpose(1, 2, 0)
            e, p, ec, _ = (t[0, i].item() for t in localisation(o.activation_maps.float(),
                                                                  o.region_frac.float()))
            if c == 0:
                axes[r, 0].imshow(shown)
                axes[r, 0].set_title(f"AU{au} on ({Path(path).parent.name}/"
                                     f"{Path(path).name})", fontsize=8)
                axes[r, 0].axis("off")
            mask = region_mask(regions[0, i].numpy(), size, size)
            _overlay(axes[r, c + 1], shown, up,
                     f"{arm}: p={o.probs[0, i]:.2f}\nin {e:.2f} (chance {ec:.2f}) "
                     f"{'✓' if p > 0 else '✗'}", mask)
    fig.suptitle(f"AU maps on test subjects, seed {a.seed} (white: the AU's region; in = map "
                 "energy in it; ✓ = peak cell in it)", fontsize=10)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
