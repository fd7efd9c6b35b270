"""On CUDA (``make test-gpu``): a training run with AMP, prediction, and DDP over two GPUs with
NCCL. Skipped where no CUDA device is visible; the meta-device audit in test_train_protocol.py
covers device placement everywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hiva.config import load_config
from hiva.train.config import TrainConfig

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.mark.parametrize("prior", [{}, {"map_prior": "both", "feature_stride": 16},
                                   {"arch": "megraphau", "graph_stage": 2}],
                         ids=["plain", "region-prior", "megraphau"])
def test_amp_training_run_on_cuda(tiny_manifest, tmp_path, tiny_cfg, tiny_st, prior):
    from hiva.train import trainer

    # names mode: sampled text and its mask reach the model (the path that crashed on CUDA);
    # region-prior: the log prior as an attention mask under fp16/bf16 autocast
    model = dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32, num_heads=2,
                 text_mode="names", dropout=0.1, **prior)
    # the tiny sentence-transformer: the GPU machine need not carry the shipped 88 MB encoder
    path = tiny_cfg(tmp_path / "c.yaml", amp="auto", channels_last=True, num_workers=2,
                    model=model, text_encoder=tiny_st)
    cfg = load_config(TrainConfig, path, data=str(tiny_manifest), out=str(tmp_path / "run"),
                      device="cuda")
    summary = trainer.run(cfg)
    fold = summary["folds"]["1"]
    assert fold["frames"]["test_scored"] == fold["frames"]["test"]
    assert 0.0 <= summary["mean"]["mean_auc"] <= 1.0 or np.isnan(summary["mean"]["mean_auc"])


def test_predict_on_cuda(tiny_manifest, tmp_path, tiny_cfg):
    import hiva
    from hiva.train import trainer

    cfg = load_config(TrainConfig, tiny_cfg(tmp_path / "c.yaml"), data=str(tiny_manifest),
                      out=str(tmp_path / "run"), device="cuda")
    trainer.run(cfg)
    det = hiva.Detector(tmp_path / "run", device="cuda", batch_size=4)
    assert det.loaded.device.type == "cuda"
    df = det.detect(tiny_manifest.parent)
    p = df[[c for c in df.columns if c.startswith("AU") and c.endswith("_p")]]
    assert len(df) > 0 and np.isfinite(p.to_numpy(dtype=float)).all()
    # streamed to disk in py-feat's layout: the same probabilities
    import pandas as pd

    out = det.detect(tiny_manifest.parent, save=tmp_path / "au.parquet", format="feat")
    feat = pd.read_parquet(out)
    np.testing.assert_allclose(feat[[c[:-2] for c in p.columns]].to_numpy(), p.to_numpy(),
                               atol=1.01e-6)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP needs 2 CUDA devices")
def test_ddp_two_gpus_nccl(tiny_manifest, tmp_path, tiny_cfg):
    cfg = tiny_cfg(tmp_path / "c.yaml", batch_size=2, epochs=2)
    run = tmp_path / "ddp"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "hiva.cli", "train", "--config", str(cfg), "--data", str(tiny_manifest), "--out",
         str(run), "--device", "cuda"], env=dict(os.environ), capture_output=True, text=True,
        timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["world_size"] == 2
    # resume restores each rank's own RNG stream (CPU and CUDA)
    state = torch.load(run / "fold1" / "last.state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and all("cuda" in r for r in state["rng"])
    assert not torch.equal(state["rng"][0]["cuda"], state["rng"][1]["cuda"])
