"""An OpenGraphAU checkpoint (built here in its own key layout) through the real CLI:
``hiva import-checkpoint`` then ``hiva predict`` on a video, the usual table with the 27 AUs and
the 14 left/right columns; a file that is not theirs is one line, exit 1."""

from __future__ import annotations

import torch

from hiva.model.config import ModelConfig
from hiva.model.factory import build_model
from hiva.predict.table import read_table
from tests.model.graphau_layout import randomise_norms, save_their_checkpoint
from tests.predict.helpers import VIDEO_PLAN


def test_import_then_predict_a_video(tmp_path, cli, media):
    cfg = ModelConfig(aus="opengraphau", arch="megraphau", backbone="resnet18", pretrained=None,
                      input_size=224, graph_stage=2, graph_k=4, graph_variant="opengraphau",
                      side_aus=(1, 2, 4, 6, 10, 11, 14))
    torch.manual_seed(0)
    model = build_model(cfg, "cpu", False)
    randomise_norms(model)
    save_their_checkpoint(model, "opengraphau", tmp_path / "og.pth")
    r = cli("import-checkpoint", "opengraphau", tmp_path / "og.pth", "--arch", "resnet18",
            "--out", tmp_path / "og")
    assert "imported opengraphau resnet18 stage 2 (41 outputs)" in r.stdout
    cli("predict", media["video"], "--checkpoint", tmp_path / "og", "--out", tmp_path / "t.csv")
    df = read_table(tmp_path / "t.csv")
    assert len(df) == len(VIDEO_PLAN)
    p = [c for c in df.columns if c.endswith("_p")]
    assert len(p) == 41 and p[26:29] == ["AU39_p", "AU01L_p", "AU01R_p"] and "AU11R_c" in df
    seen = df[df["success"] == 1]
    assert len(seen) >= 2 and seen[p].notna().all().all()
    assert ((seen[p] >= 0) & (seen[p] <= 1)).all().all()

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    r = cli("import-checkpoint", "megraphau", tmp_path / "junk.pth", "--arch", "resnet50",
            "--out", tmp_path / "x", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "tensor-only checkpoint" in r.stderr
