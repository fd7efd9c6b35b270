"""The region prior reads no label: it is placed from landmarks that do not move with the AUs
(a training frame's neutral face, else the average neutral face), and a run's test
probabilities are what ``hiva.Detector`` gives on the same images (evaluation = deployment); and
a run with ``map_prior_source: corpus`` places it from its descriptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hiva.facs import au_column

AUS = (1, 2, 4, 12)
MODEL = dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32, num_heads=2,
             text_mode="learned", dropout=0.0, feature_stride=16, map_prior="bias")


def _pair_manifest(folder):
    """One identity at one pose, rendered at rest and with AU1+AU2 at intensity 4 (brows up: its
    drawn brow landmarks move several pixels); both rows carry the neutral landmarks too."""
    from hiva.data.image_files import write_image
    from hiva.data.manifest import write_manifest
    from hiva.data.synth import _subject_rng
    from hiva.data.synth_face import SYNTH_AUS, render_face, sample_identity

    ident = sample_identity(_subject_rng(0, 0, 0))
    pose = (0.03, 1.0, 0.01, -0.01, 0.02)
    rest = render_face(ident, {}, 96, pose, landmarks=True)[1]
    rows = []
    for i, au in enumerate(({}, {1: 4.0, 2: 4.0})):
        img, marks = render_face(ident, au, 96, pose, landmarks=True)
        write_image(folder / f"{i}.jpg", img, 95)
        row = {"path": f"{i}.jpg", "subject": "S0", "sequence": "s", "frame": i,
               "landmarks": marks.ravel().tolist(), "landmarks_neutral": rest.ravel().tolist()}
        row.update({au_column(k): int(au.get(k, 0) >= 1) for k in SYNTH_AUS})
        rows.append(row)
    return write_manifest(pd.DataFrame(rows), folder / "manifest.parquet",
                          {"landmark_scheme": "hiva-synth", "synthetic": True})


def test_one_face_with_and_without_an_au_gets_the_same_prior(tmp_path):
    from hiva.data.dataset import AUDataset
    from hiva.data.manifest import read_manifest
    from hiva.data.transforms import eval_transform
    from hiva.model.config import ModelConfig
    from hiva.model.hiva import HiVA
    from hiva.train.fold_setup import mean_regions

    df = read_manifest(_pair_manifest(tmp_path))
    ds = AUDataset(df, AUS, eval_transform(size=32, resize=36))
    items = [ds[0], ds[1]]
    # The AU moved the drawn landmarks (what the maps are scored on) ...
    assert not torch.allclose(items[0]["regions"], items[1]["regions"], equal_nan=True)
    # ... and not the neutral ones (what the prior may read).
    torch.testing.assert_close(items[0]["prior_regions"], items[1]["prior_regions"],
                               equal_nan=True)
    model = HiVA(ModelConfig(aus=AUS, **MODEL))
    model.set_region_template(mean_regions(ds))
    images = torch.stack([it["image"] for it in items])
    regions = torch.stack([it["regions"] for it in items])
    prior_regions = torch.stack([it["prior_regions"] for it in items])
    with torch.no_grad():
        for mode, kw in (("train", dict(prior_regions=prior_regions)), ("eval", {})):
            model.train(mode == "train")
            out = model(images, regions=regions, **kw)
            assert out.prior_frac.sum() > 0, mode
            torch.testing.assert_close(out.prior_frac[0], out.prior_frac[1], msg=mode)
    # The template is the neutral face's: the prior at test equals the one seen in training.
    model.eval()
    at_test = model(images, regions=regions).prior_frac
    model.train()
    torch.testing.assert_close(model(images, prior_regions=prior_regions).prior_frac, at_test)


@pytest.fixture(scope="module")
def bias_run(tmp_path_factory, tiny_manifest):
    from tests.helpers import run_cli

    root = tmp_path_factory.mktemp("bias_run")
    cfg = dict(model=dict(MODEL), aus=",".join(map(str, AUS)), num_folds=3, folds=[1], epochs=1,
               max_steps_per_epoch=2, batch_size=4, num_workers=0, amp="off", val_fraction=0.25,
               resize=36, tensorboard=False, plots=False, progress=False, channels_last=False)
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_cli("train", "--config", root / "cfg.yaml", "--data", tiny_manifest, "--out",
            root / "run")
    return root / "run"


def test_test_fold_probabilities_equal_the_detector(bias_run, tiny_manifest):
    """What a run reports is what a user gets: the bias run's test probabilities (the prior from
    the stored template, never the test frames' own drawn landmarks) equal hiva.Detector's on
    the same image files, with the same alignment setting (none: synthetic frames)."""
    import hiva

    pred = pd.read_parquet(bias_run / "fold1" / "test_predictions.parquet")
    assert pred["energy_AU01"].notna().any()  # the test frames' landmarks did reach the scores
    det = hiva.Detector(bias_run)
    assert det.align is False and det.loaded.model.uses_bias
    root = tiny_manifest.parent
    got = det.detect([str(root / p) for p in pred["path"]])
    np.testing.assert_allclose(got[[f"{au_column(a)}_p" for a in AUS]].to_numpy(np.float64),
                               pred[[f"p_AU{a:02d}" for a in AUS]].to_numpy(np.float64),
                               rtol=0, atol=2e-6)


def test_a_run_places_its_prior_from_the_text(tmp_path, tiny_manifest, tiny_cfg):
    """A bias run with corpus regions stores its template from the descriptions: AU1's discs
    where its text puts them (here, deliberately, the lip corners) rather than at the brows."""
    from safetensors.torch import load_file

    from hiva.config import load_config
    from hiva.train.config import TrainConfig
    from hiva.train.trainer import run
    from tests.data.test_data_text_regions import TEXTS, _bank

    texts = {1: TEXTS[12], 2: TEXTS[1], 4: TEXTS[1], 6: TEXTS[17], 12: TEXTS[12],
             25: TEXTS[12]}
    bank = str(_bank(tmp_path / "bank", texts))
    model = dict(backbone="resnet18", pretrained="none", input_size=32, d_model=32, num_heads=2,
                 text_mode="learned", map_prior="bias", map_prior_source="corpus")
    cfg = load_config(TrainConfig, tiny_cfg(tmp_path / "c.yaml", model=model,
                                            tensorboard=False, plots=False),
                      data=str(tiny_manifest), out=str(tmp_path / "run"), text_bank=bank)
    run(cfg)
    t = load_file(str(tmp_path / "run" / "fold1" / "best.safetensors"))["region_template"]
    aus = [1, 2, 4, 6, 12, 25]
    au1, au12 = t[aus.index(1)], t[aus.index(12)]
    torch.testing.assert_close(au1, au12, equal_nan=True)  # the same text, the same region
    assert float(np.nanmean(au1[:, 1].numpy())) > float(np.nanmean(t[aus.index(2)][:, 1]))
