"""Heads-only training (``model.freeze_backbone``) through the content-addressed feature cache:
cached maps give the outputs of the images; the key follows the bytes, the view, the input size
and the backbone's weights, not the path; a warm run runs no backbone; a frozen backbone does
not move; a tiny run writes its outputs and resumes."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
import torch

from hiva.config import load_config
from hiva.data.dataset import AUDataset
from hiva.data.manifest import read_manifest
from hiva.data.transforms import eval_transform
from hiva.model.backbone import Backbone
from hiva.model.factory import build_model
from hiva.runtime import Dist
from hiva.train import trainer
from hiva.train.config import TrainConfig
from hiva.train.feature_cache import backbone_fingerprint, feature_key, read_image_info
from hiva.train.feature_set import ViewTransform, feature_sets, view_specs
from tests.train.conftest import TINY_AUS, TINY_MODEL

AUS = tuple(int(a) for a in TINY_AUS.split(","))
CPU = torch.device("cpu")


def _train_cfg(tmp_path, **kw) -> TrainConfig:
    model = dict(TINY_MODEL, text_mode="learned", freeze_backbone=True)
    base = dict(model=model, feature_cache=str(tmp_path / "cache"), resize=36, num_workers=0,
                progress=False, batch_size=4, channels_last=False)
    base.update(kw)
    return TrainConfig(**base)


def _model(cfg: TrainConfig, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cfg.model_config(AUS), CPU, channels_last=False).eval()


def _eval_ds(df, model):
    mean, std = model.normalisation()
    return AUDataset(df, AUS, eval_transform(mean, std, size=model.cfg.input_size, resize=36))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cached_features_give_the_outputs_of_the_images(tiny_manifest, tmp_path, dtype):
    cfg = _train_cfg(tmp_path, feature_dtype=dtype)
    model = _model(cfg)
    df = read_manifest(tiny_manifest).iloc[:6]
    ds = _eval_ds(df, model)
    feature_sets(model, cfg, [ds], [1], CPU, Dist())  # fills the cache
    fs = feature_sets(model, cfg, [ds], [2], CPU, Dist())[0]  # reads view 0 back (+ view 1)
    assert fs.seed is None  # an eval set: view 0 (what validation and test read)
    batch = next(fs.batches(range(6), 6, drop_last=False))
    assert batch["features"].dtype == getattr(torch, dtype)
    images = torch.stack([ds[i]["image"] for i in range(6)])
    regions = torch.stack([ds[i]["regions"] for i in range(6)])
    # the landmarks follow the same transform (NaN: AUs without a region)
    torch.testing.assert_close(batch["regions"], regions, rtol=0, atol=0, equal_nan=True)
    with torch.no_grad():
        feats = model.backbone(images)
        want = model(images, regions=regions)
        cached = model(None, regions=batch["regions"], features=batch["features"].float())
        # the heads-only path reads every map through the stored dtype, cached or just computed
        fresh = model(None, regions=regions,
                      features=feats.to(getattr(torch, dtype)).float())
    assert torch.equal(cached.logits, fresh.logits)
    assert torch.equal(cached.activation_maps, fresh.activation_maps)
    # a training set draws each item's view per epoch from (seed, epoch, index)
    fs.seed = 3
    draws = []
    for epoch in (0, 1, 0):
        fs.set_epoch(epoch)
        draws.append([fs.view_of(i) for i in range(6)])
    assert draws[0] == draws[2] != draws[1] and set(draws[0]) == {0, 1}
    if dtype == "float32":
        assert torch.equal(cached.logits, want.logits)
    else:  # float16 storage: a rounding of the maps, not a different model
        assert torch.allclose(cached.probs, want.probs, atol=2e-3)


def test_crop_views_move_the_landmarks_with_the_image(tiny_manifest):
    from torchvision import tv_tensors

    df = read_manifest(tiny_manifest)
    ds = AUDataset(df.iloc[:1], AUS)
    img = ds.load(0)
    kp = ds.keypoints(ds.landmarks[0], img.size)
    spec = view_specs(4, 32, 36, (0.5,) * 3, (0.5,) * 3)[3]
    assert spec["kind"] == "crop"
    tf = ViewTransform(spec, "digest-a")
    with_image = tf(img, kp)
    alone = tf(tv_tensors.KeyPoints(kp.clone(), canvas_size=kp.canvas_size))
    torch.testing.assert_close(with_image[1], alone, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(tf(img, kp)[0], with_image[0])  # seeded: the same crop every time
    other = ViewTransform(spec, "digest-b")(img, kp)[0]  # another image, another crop
    assert not torch.equal(other, with_image[0])


def test_cache_key_follows_content_view_size_and_weights(tiny_manifest, tmp_path):
    df = read_manifest(tiny_manifest)
    src = df["path"].iloc[0]
    copy = tmp_path / "elsewhere" / "copy.jpg"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    os.utime(copy, (1_000_000, 1_000_000))  # another mtime
    digest, _ = read_image_info(src)
    assert read_image_info(str(copy))[0] == digest
    cfg = _train_cfg(tmp_path)
    model = _model(cfg)
    fp = backbone_fingerprint(model.backbone)
    specs = view_specs(2, 32, 36, *model.normalisation())
    key = feature_key(digest, specs[0], fp, "float16")
    other_bytes = read_image_info(df["path"].iloc[1])[0]
    assert feature_key(other_bytes, specs[0], fp, "float16") != key
    assert feature_key(digest, specs[1], fp, "float16") != key
    assert feature_key(digest, view_specs(1, 48, 54, *model.normalisation())[0], fp,
                       "float16") != key
    assert feature_key(digest, specs[0], fp, "float32") != key
    assert backbone_fingerprint(_model(cfg, seed=1).backbone) != fp
    with torch.no_grad():
        model.backbone.model.bn1.running_mean += 1  # a statistic is a weight too
    assert backbone_fingerprint(model.backbone) != fp
    # a copy at another path (and mtime) is a cache hit
    model = _model(cfg)
    ds = _eval_ds(df.iloc[:1], model)
    feature_sets(model, cfg, [ds], [2], CPU, Dist())
    moved = df.iloc[:1].assign(path=[str(copy)])
    moved.attrs = df.attrs
    got = feature_sets(model, cfg, [_eval_ds(moved, model)], [2], CPU, Dist())[0]
    assert got.ok.all()
    cache_files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(cache_files) == 2  # one per view; no temp file left behind
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


def test_a_bad_image_is_counted_and_skipped(tiny_manifest, tmp_path, caplog):
    df = read_manifest(tiny_manifest).iloc[:4]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    df = df.assign(path=[*df["path"].iloc[:3], str(bad)])
    cfg = _train_cfg(tmp_path)
    model = _model(cfg)
    fs = feature_sets(model, cfg, [_eval_ds(df, model)], [2], CPU, Dist())[0]
    assert fs.ok.tolist() == [True, True, True, False] and fs.bad == 1
    batch = next(fs.batches([0, 3, 1], 3, drop_last=False))
    assert batch["index"].tolist() == [0, 1] and batch["skipped"] == 1
    assert "skipping unreadable image" in caplog.text


def test_feature_settings_are_validated():
    from hiva.errors import HivaError

    assert (TrainConfig().feature_views, TrainConfig().feature_dtype) == (2, "float16")
    with pytest.raises(HivaError, match="feature_views must be ≥ 1"):
        TrainConfig(feature_views=0)
    with pytest.raises(HivaError, match="feature_dtype must be one of float16, float32"):
        TrainConfig(feature_dtype="bfloat16")


def _run_cfg(tmp_path, manifest, tiny_cfg, name, **kw):
    kw = dict(dict(model=dict(TINY_MODEL, freeze_backbone=True), epochs=2, tensorboard=False,
                   plots=False, feature_cache=str(tmp_path / "cache")), **kw)
    return load_config(TrainConfig, tiny_cfg(tmp_path / f"{name}.yaml", **kw),
                       data=str(manifest), out=str(tmp_path / name))


class _Counter:
    """Counts the images the backbone sees (a wrapper around the real forward)."""

    def __init__(self, monkeypatch):
        self.images = 0
        real = Backbone.forward

        def counted(backbone, images):
            self.images += len(images)
            return real(backbone, images)

        monkeypatch.setattr(Backbone, "forward", counted)


def test_a_warm_run_runs_no_backbone(tiny_manifest, tmp_path, tiny_cfg, monkeypatch, capsys):
    seen = _Counter(monkeypatch)
    a = trainer.run(_run_cfg(tmp_path, tiny_manifest, tiny_cfg, "a", feature_views=3))
    frames = a["folds"]["1"]["frames"]
    assert seen.images == 3 * frames["train"] + frames["val"] + frames["test"]  # each map once
    said = capsys.readouterr().out
    assert " 0 cached, " in said
    seen.images = 0
    b = trainer.run(_run_cfg(tmp_path, tiny_manifest, tiny_cfg, "b", feature_views=3))
    said = capsys.readouterr().out
    assert seen.images == 0  # every map from the cache: no backbone forward at all
    assert " 0 computed, " in said
    # the same run whether its maps were computed or read (no RNG drawn on the way)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert a["mean"]["f1"] == b["mean"]["f1"]


def test_frozen_backbone_does_not_move(tiny_manifest, tmp_path, tiny_cfg):
    from hiva.textbank import load_text
    from hiva.train.protocol import load_data, make_folds

    cfg = _run_cfg(tmp_path, tiny_manifest, tiny_cfg, "frozen", epochs=1)
    df, scheme = load_data(cfg.data)
    _, folds = make_folds(cfg, df, scheme)
    k, pool, test_df = folds[0]
    text = load_text(cfg.model_config(AUS), AUS)
    run = trainer.FoldRun(cfg, k, pool, test_df, AUS, text, Dist(), CPU)
    before = {n: t.clone() for n, t in run.model.backbone.state_dict().items()}
    heads = {n: p.detach().clone() for n, p in run.model.named_parameters()
             if not n.startswith("backbone.")}
    run.run()
    after = run.model.backbone.state_dict()
    assert any("running_mean" in n for n in before)
    for n, t in before.items():  # weights and BatchNorm statistics, bit for bit
        assert torch.equal(t, after[n]), n
    moved = [n for n, p in run.model.named_parameters() if n in heads
             and not torch.equal(p.detach(), heads[n])]
    assert moved  # the heads did train
    from safetensors.torch import load_file

    best = load_file(str(tmp_path / "frozen" / "fold1" / "best.safetensors"))
    for n, t in before.items():
        assert torch.equal(best[f"backbone.{n}"], t), n


def _losses(run):
    with open(run / "fold1" / "steps.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_heads_only_run_writes_its_outputs_and_resumes(tiny_manifest, tmp_path, tiny_cfg,
                                                       monkeypatch):
    import pandas as pd

    ref = _run_cfg(tmp_path, tiny_manifest, tiny_cfg, "ref", model=dict(
        TINY_MODEL, freeze_backbone=True, map_prior="kl"))
    summary = trainer.run(ref)
    fold = summary["folds"]["1"]
    assert fold["frames"]["test_scored"] == fold["frames"]["test"]
    assert "localisation" in fold  # view-0 landmarks score the maps
    pred = pd.read_parquet(tmp_path / "ref" / "fold1" / "test_predictions.parquet")
    assert len(pred) == fold["frames"]["test"]
    assert json.loads((tmp_path / "ref" / "metrics.json").read_text())["folds"]["1"]["test"]
    # the run exports and predicts from images like a fine-tuned one (its backbone inside)
    import hiva
    from hiva.predict.export import export

    export(tmp_path / "ref", tmp_path / "exp")
    det = hiva.Detector(tmp_path / "exp", device="cpu")
    assert len(det.detect(sorted(tiny_manifest.parent.rglob("*.jpg"))[:2])) == 2

    cfg = _run_cfg(tmp_path, tiny_manifest, tiny_cfg, "killed", model=dict(
        TINY_MODEL, freeze_backbone=True, map_prior="kl"))
    real = trainer.FoldRun.train_epoch

    def dies_in_epoch_two(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt  # as a kill after epoch 1's checkpoint
        return real(self, epoch)

    monkeypatch.setattr(trainer.FoldRun, "train_epoch", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        trainer.run(cfg)
    monkeypatch.setattr(trainer.FoldRun, "train_epoch", real)
    assert not (tmp_path / "killed" / "fold1" / "metrics.json").exists()
    from dataclasses import replace

    trainer.run(replace(cfg, resume="latest"))
    got, want = _losses(tmp_path / "killed"), _losses(tmp_path / "ref")
    assert [s for s, _ in got] == [s for s, _ in want]
    assert np.allclose([v for _, v in got], [v for _, v in want], rtol=1e-5, atol=1e-6)
    a = json.loads((tmp_path / "killed" / "metrics.json").read_text())["mean"]["f1"]
    assert a == pytest.approx(summary["mean"]["f1"])
