from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from hiva.cli import app
from hiva.data.manifest import read_manifest, write_manifest


@pytest.mark.integration
def test_align_finds_astronaut_face_and_skips_blank(tmp_path):
    pytest.importorskip("mediapipe")
    from skimage import data

    from hiva.data.align import EYE_LEFT, AlignConfig, FaceAligner, run

    img = data.astronaut()
    aligner = FaceAligner(size=256)
    faces = aligner.detect(img)
    assert len(faces) == 1
    x, y, w, h = faces[0]["box"]
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200  # her face, top centre of the photo
    # rotate the photo: the crop must come back upright (eyes level, at canonical height)
    import cv2

    tilted = cv2.warpAffine(img, cv2.getRotationMatrix2D((256, 256), 15, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REFLECT)
    crop, info = aligner(tilted)
    assert crop.shape == (256, 256, 3)
    eyes = aligner.detect(crop)[0]["eyes"]
    assert abs(eyes[0][1] - eyes[1][1]) < 6
    assert abs(eyes[0][1] - EYE_LEFT[1] * 256) < 10
    assert abs(math.hypot(eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1]) - 0.32 * 256) < 12

    Image.fromarray(img).save(tmp_path / "astro.png")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "blank.png")
    df = pd.DataFrame({"path": [str(tmp_path / "astro.png"), str(tmp_path / "blank.png")],
                       "subject": ["a", "b"], "sequence": "", "frame": [0, 0], "AU01": [1, 0]})
    write_manifest(df, tmp_path / "m.parquet")
    out = run(AlignConfig(manifest=str(tmp_path / "m.parquet"), out=str(tmp_path / "al")))
    res = read_manifest(out)
    assert list(res["subject"]) == ["a"]
    assert Image.open(res["path"][0]).size == (256, 256)
    assert "no face" in (tmp_path / "al" / "no_face.csv").read_text()


def test_cli_synth_import_folds(tmp_path, bp4d_root):
    r = CliRunner().invoke(app, ["data", "synth", "--out", str(tmp_path / "s"), "--subjects", "3",
                                 "--per-subject", "2", "--size", "128", "--workers", "1",
                                 "--no-grid"])
    assert r.exit_code == 0, r.output
    assert len(read_manifest(tmp_path / "s" / "manifest.parquet")) == 6
    assert (tmp_path / "s" / "config.yaml").is_file()
    r = CliRunner().invoke(app, ["data", "folds", str(tmp_path / "s" / "manifest.parquet"),
                                 "--k", "3"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("scheme: kfold")  # synthetic subjects: not BP4D's or DISFA's
    assert [ln.split(":")[0] for ln in lines[1:]] == ["fold 1", "fold 2", "fold 3"]
    r = CliRunner().invoke(app, ["data", "import", "bp4d", "--root", str(bp4d_root), "--out",
                                 str(tmp_path / "b.parquet")])
    assert r.exit_code == 0, r.output
    assert "skipped 1: labelled frames with no image" in r.output
    assert len(read_manifest(tmp_path / "b.parquet")) == 4


def test_cli_bad_source_is_one_line_error(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "hiva.cli", "data", "import", "nope", "--out",
                        str(tmp_path / "x.parquet")], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "unknown source" in p.stderr
