"""The trainer reads a pack (``hiva data pack``) as it reads the manifest it was made from: the
same folds and validation subjects, the same batches for the same seed (through DataLoader
workers), and so the same run, loss for loss and score for score."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import torch

from hiva.config import load_config
from hiva.data.pack import pack_manifest
from hiva.runs import HISTORY, fold_dir
from hiva.runtime import Dist
from hiva.textbank import load_text
from hiva.train import protocol, trainer
from hiva.train.config import TrainConfig
from hiva.train.steps import epoch_indices, make_loader, stream_seed

CPU = torch.device("cpu")


def _fold(tiny_cfg, tmp_path, data, name) -> trainer.FoldRun:
    cfg = load_config(TrainConfig, tiny_cfg(tmp_path / f"{name}.yaml", tensorboard=False,
                                            plots=False, num_workers=2, epochs=2),
                      data=str(data), out=str(tmp_path / name))
    df, scheme = protocol.load_data(cfg.data)
    aus = protocol.resolve_aus(cfg, df)
    k, pool, test = protocol.make_folds(cfg, df, scheme)[1][0]
    return trainer.FoldRun(cfg, k, pool, test, aus, load_text(cfg.model, aus), Dist(), CPU)


def test_a_pack_trains_as_its_manifest_does(tiny_manifest, tiny_cfg, tmp_path):
    """Packed from a copy of the set whose images are then deleted: the run reads no image."""
    copy = tmp_path / "set"
    shutil.copytree(tiny_manifest.parent, copy)
    resize = 36  # the tiny config's resize: the pack holds exactly what training starts from
    packed = pack_manifest(copy / tiny_manifest.name, tmp_path / "pack", size=resize,
                           shard_size=16, workers=0, progress=False)["manifest"]
    shutil.rmtree(copy)
    a = _fold(tiny_cfg, tmp_path, tiny_manifest, "images")
    b = _fold(tiny_cfg, tmp_path, packed, "pack")
    assert b.ds_train.pack is not None and a.ds_train.pack is None
    protocol.read_data(b.cfg, Dist())  # its shards are there: no "none of the images exists"
    for part in ("train_df", "val_df", "test_df"):
        for col in ("subject", "frame"):
            assert getattr(a, part)[col].tolist() == getattr(b, part)[col].tolist(), part

    def batches(fr):
        fr.ds_train.set_epoch(1)
        idx = epoch_indices(len(fr.ds_train), 1, fr.cfg.seed + fr.k, Dist(), fr.epoch_len)
        return list(make_loader(fr.ds_train, idx, 4, fr.cfg, CPU,
                                stream_seed("loader", fr.cfg.seed, 1, 0), drop_last=True))

    got_a, got_b = batches(a), batches(b)
    assert len(got_a) == len(got_b) > 1
    assert got_a[0]["image"].dtype == torch.uint8  # the model scales and normalises on its device
    for x, y in zip(got_a, got_b):
        for key in ("image", "target", "mask", "index", "prior_regions"):
            assert torch.equal(torch.nan_to_num(x[key], 7.0), torch.nan_to_num(y[key], 7.0)), key

    # Each run built just before it runs: building a FoldRun seeds the global RNG.
    ra = _fold(tiny_cfg, tmp_path, tiny_manifest, "images").run()
    rb = _fold(tiny_cfg, tmp_path, packed, "pack").run()
    ha = pd.read_csv(fold_dir(a.cfg.out, a.k) / HISTORY)
    hb = pd.read_csv(fold_dir(b.cfg.out, b.k) / HISTORY)
    cols = ["train_loss", "val_loss", "val_mean_f1", "best_epoch"]
    pd.testing.assert_frame_equal(ha[cols], hb[cols])
    assert json.dumps(ra["test"], sort_keys=True) == json.dumps(rb["test"], sort_keys=True)
    assert ra["subject_ids"] == rb["subject_ids"]
