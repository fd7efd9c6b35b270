"""Load ``hiva predict --format openface`` and ``--format feat`` tables with py-feat's own readers
and print what py-feat sees.

py-feat is not a dependency of hiva: run this with a Python that has it, e.g. a scratch venv::

    python -m venv /tmp/featvenv && /tmp/featvenv/bin/pip install py-feat
    hiva predict two_faces.png clip.mp4 --checkpoint RUN --align --format openface --out of.csv
    hiva predict two_faces.png clip.mp4 --checkpoint RUN --align --format feat --out feat.csv
    /tmp/featvenv/bin/python benchmarks/check_pyfeat_readers.py of.csv feat.csv

It fails (exit 1) when a reader raises or an accessor does not give the columns hiva wrote.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("openface_csv")
    ap.add_argument("feat_csv")
    args = ap.parse_args()

    import feat
    import pandas as pd
    from feat.utils.io import read_feat, read_openface

    print(f"py-feat {getattr(feat, '__version__', '?')}, pandas {pd.__version__}")
    ok = True

    raw = pd.read_csv(args.openface_csv)
    of = read_openface(args.openface_csv)
    print(f"\nread_openface({args.openface_csv}) -> {type(of).__name__} {of.shape}, "
          f"detector={of.detector}")
    print("  first five columns:", list(of.columns[:5]))
    print("  time columns:", of.time_columns, "->", of[of.time_columns].shape)
    # py-feat's .aus is OpenFace's own list (17 AUxx_r, 18 AUxx_c), read as it is, no help
    aus = of.aus
    print(f"  .aus {aus.shape}: {list(aus.columns[:3])} ... {list(aus.columns[-3:])}")
    filled = [c for c in aus.columns if aus[c].notna().any()]
    print("  .aus columns holding values:", filled)
    r = [c for c in filled if c.endswith("_r")]
    if r:
        print(f"  intensities (0-5) in .aus: min {aus[r].min().min():.3f}, "
              f"max {aus[r].max().max():.3f}")
    print(of[["frame", "face_id", "timestamp", "confidence", "success", *filled[:3]]].head(4)
          .to_string())
    ok &= list(of.columns[:5]) == ["frame", "face_id", "timestamp", "confidence", "success"]
    ok &= "track_id" in of.columns  # hiva's track, kept beside OpenFace's columns
    ok &= aus.shape == (len(raw), 35) and bool(filled)
    ok &= all(aus[c].equals(raw[c]) for c in filled)

    fx = read_feat(args.feat_csv)
    print(f"\nread_feat({args.feat_csv}) -> {type(fx).__name__} {fx.shape}, "
          f"detector={fx.detector}")
    print("  .aus columns:", list(fx.aus.columns))
    print("  .faceboxes:\n" + fx.faceboxes.head(4).to_string())
    print("  .aus:\n" + fx.aus.head(4).round(3).to_string())
    raw = pd.read_csv(args.feat_csv)
    ok &= list(fx.aus.columns) == [c for c in raw.columns if "AU" in c]
    ok &= "track_id" in fx.columns and "track_id" not in fx.aus.columns
    ok &= not any(c.endswith(("_c", "_p")) for c in fx.aus.columns)
    ok &= list(fx.faceboxes.columns) == ["FaceRectX", "FaceRectY", "FaceRectWidth",
                                         "FaceRectHeight", "FaceScore"]
    print("\nOK" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
