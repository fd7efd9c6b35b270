"""Where the descriptions say each AU shows, against the FACS table: the text region alone as a
map (``hiva.text_regions``: the face parts its descriptions move), scored against the AU's
FACS region on the average neutral face of a set, at the model's map resolution. This is what
``map_prior_source: corpus`` can tell a model about an AU it has no label for.

    python benchmarks/text_regions.py --bank out/demo/text-bank \
        --data out/bench/confirm/manifest.parquet --markdown out/lang/text_regions.md

Energy: the share of the text region's mass inside the FACS region (chance: the FACS region's
share of the map); pointing: whether the text region's peak cell overlaps it. Shuffled: the same
with every AU given another AU's text region (the derangement of ``text_seed`` 0), the control.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from emit import emit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bank", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--aus", default="bp4d")
    ap.add_argument("--size", type=int, default=112, help="Input size (the demo model's).")
    ap.add_argument("--grid", type=int, default=7, help="Map side (stride-16 maps at 112 px).")
    ap.add_argument("--markdown", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from hiva.data.dataset import AUDataset
    from hiva.data.manifest import read_manifest
    from hiva.data.transforms import eval_transform
    from hiva.facs import AUS, parse_aus
    from hiva.regions import disc_fractions, localisation
    from hiva.text_regions import part_shares, text_parts, text_regions
    from hiva.textbank import load_text_bank
    from hiva.textbank.controls import deranged
    from hiva.train.fold_setup import mean_regions

    aus = parse_aus(a.aus)
    texts = load_text_bank(a.bank, aus).texts
    table = text_regions(texts)
    shuffled = deranged(table, aus, 0)
    df = read_manifest(a.data)
    tf = eval_transform(size=a.size, resize=round(a.size * 8 / 7))
    grid = (a.grid, a.grid)

    def frac(tab):
        ds = AUDataset(df, aus, tf, region_table=tab, prior_table=tab)
        return disc_fractions(torch.from_numpy(mean_regions(ds)), a.size, grid).flatten(-2)

    facs, text, shuf = frac(None), frac(table), frac(shuffled)
    rows, scores = [], {"text": [], "shuffled": [], "facs": [], "chance": []}
    for i, au in enumerate(aus):
        got = {}
        for name, f in (("text", text), ("shuffled", shuf), ("facs", facs)):
            e, p, ec, _ = localisation(f[i:i + 1] / f[i:i + 1].sum().clamp_min(1e-12),
                                       facs[i:i + 1])
            got[name] = (float(e[0]), float(p[0]))
            scores[name].append(got[name])
        scores["chance"].append(float(ec[0]))
        top = list(part_shares(texts[au]).items())[:3]
        shares = ", ".join(f"{p} {100 * s:.0f}%" for p, s in top)
        rows.append(f"| AU{au} {AUS[au].name} | {', '.join(text_parts(texts[au])) or '—'} | "
                    f"{shares} | {100 * got['text'][0]:.0f} | {'yes' if got['text'][1] else 'no'}"
                    f" | {100 * got['shuffled'][0]:.0f} | {100 * got['facs'][0]:.0f} | "
                    f"{100 * float(ec[0]):.0f} |")
    mean = {k: np.nanmean(np.array(v, dtype=float), 0) for k, v in scores.items()}
    lines = [f"Text regions of {a.bank} against the FACS regions, on the average neutral face of "
             f"{a.data} ({a.grid}×{a.grid} map at {a.size} px). Energy ×100: the text region's "
             "mass inside the FACS region; pointing: its peak cell inside it; shuffled: another "
             "AU's text region (the control); ceiling: the FACS region itself as the map; "
             "chance: the FACS region's share of the map.", "",
             "| AU | text region's parts | parts moved (share of descriptions) | energy | "
             "pointing | energy, shuffled | ceiling | chance |",
             "|---|---|---|---|---|---|---|---|",
             *rows,
             f"| mean | | | {100 * mean['text'][0]:.0f} | {100 * mean['text'][1]:.0f}% | "
             f"{100 * mean['shuffled'][0]:.0f} (pointing {100 * mean['shuffled'][1]:.0f}%) | "
             f"{100 * mean['facs'][0]:.0f} | {100 * mean['chance']:.0f} |"]
    emit("\n".join(lines), a.markdown)


if __name__ == "__main__":
    main()
