"""hiva predict / explain / export and hiva.Detector on a tiny trained run, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiva.errors import HivaError
from hiva.facs import au_column
from tests.predict.helpers import FPS, TINY_AUS, VIDEO_PLAN

P_COLS = [f"{au_column(a)}_p" for a in TINY_AUS]
C_COLS = [f"{au_column(a)}_c" for a in TINY_AUS]


@pytest.fixture(scope="module")
def predicted(tiny_run, media, cli, tmp_path_factory):
    """The CLI's CSV and Parquet for [video, folder], aligned (so blank frames have no face)."""
    pytest.importorskip("mediapipe")
    out = tmp_path_factory.mktemp("pred")
    r = cli("predict", media["video"], media["folder"], "--checkpoint", tiny_run, "--out",
            out / "au.csv", "--align", "--batch-size", "3", "--no-progress")
    cli("predict", media["video"], media["folder"], "--checkpoint", tiny_run, "--out",
        out / "au.parquet", "--align", "--no-progress")
    return {"csv": out / "au.csv", "parquet": out / "au.parquet", "stderr": r.stderr}


def test_predict_rows_timestamps_and_no_face(predicted, media):
    from hiva.predict.table import read_table

    df = read_table(predicted["csv"])
    assert list(df.columns) == ["input", "frame", "face_id", "track_id", "timestamp", "confidence",
                                "success", "face_x", "face_y", "face_width", "face_height",
                                *P_COLS, *C_COLS]
    vid = df[df["input"] == str(media["video"])]
    assert len(vid) == len(VIDEO_PLAN)  # one row per frame, none dropped
    assert vid["frame"].tolist() == list(range(len(VIDEO_PLAN)))
    np.testing.assert_allclose(vid["timestamp"], np.arange(len(VIDEO_PLAN)) / FPS, atol=1e-6)
    plan = np.array(VIDEO_PLAN)
    grey = vid[plan == "grey"]
    assert (grey["success"] == 0).all() and grey[P_COLS].isna().all().all()
    assert (grey["confidence"] == 0).all() and grey[C_COLS].isna().all().all()
    assert (grey["track_id"] == -1).all() and (vid[plan != "grey"]["track_id"] >= 0).all()
    astro = vid[plan == "astro"]
    assert (astro["success"] == 1).all() and (astro["confidence"] > 0.5).all()
    assert astro[P_COLS].notna().all().all()
    # the image folder: 4 images (recursively), the corrupt one counted and skipped, .txt ignored
    imgs = df[df["input"] != str(media["video"])]
    assert len(imgs) == 4 and not imgs["input"].str.contains("broken|notes").any()
    assert (imgs["frame"] == 0).all() and (imgs["track_id"] == imgs["face_id"]).all()
    assert "1 unreadable files skipped" in predicted["stderr"]
    assert "broken.jpg" in predicted["stderr"]
    ok = df[df["success"] == 1]
    assert ((ok[P_COLS] >= 0) & (ok[P_COLS] <= 1)).all().all()


def test_detector_equals_csv_and_parquet(predicted, tiny_run, media):
    import hiva
    from hiva.predict.table import read_table

    det = hiva.Detector(tiny_run, align=True, batch_size=5)
    df = det.detect([media["video"], media["folder"]])
    assert df.attrs["unreadable"][0][0].endswith("broken.jpg")
    # The files come from another process (the CLI, other batches): probabilities are rounded to
    # 6 decimals there and here, so a last-digit difference in the float sums can move a value by
    # one unit of the 6th decimal. That unit is the tolerance the format allows, no more.
    unit = dict(check_exact=False, rtol=0, atol=1.01e-6)
    pd.testing.assert_frame_equal(df, read_table(predicted["csv"]), check_dtype=False, **unit)
    pd.testing.assert_frame_equal(df, read_table(predicted["parquet"]), **unit)
    # decisions use the run's thresholds (tuned on validation: the run stored them)
    assert det.loaded.threshold_source.startswith("tuned")
    th = json.loads((tiny_run / "fold1" / "metrics.json").read_text())["test_tuned"]["thresholds"]
    assert det.thresholds == th
    ok = df[df["success"] == 1]
    assert (ok[C_COLS].to_numpy().astype(int) == (ok[P_COLS].to_numpy() >= th)).all()


def test_defaults_follow_training_data(tiny_run, media):
    from hiva.predict import Detector

    det = Detector(tiny_run)  # trained on whole synthetic frames → scored on whole frames
    assert det.align is False and "synthetic" in det.loaded.align_source
    df = det.detect(media["folder"])
    assert (df["success"] == 1).all() and df["confidence"].isna().all()
    # the same probabilities as scoring the decoded images directly, in one batch
    from hiva.predict.media import read_image

    direct = det.score([read_image(p) for p in df["input"]])
    np.testing.assert_allclose(df[P_COLS].to_numpy(), direct, atol=1e-6)
    assert Detector(tiny_run, threshold="0.3").thresholds == [0.3] * len(TINY_AUS)


def test_a_relative_training_set_is_found_from_another_folder(media, tmp_path, monkeypatch):
    """`hiva train --data set/manifest.parquet --out run` in a project folder, predicted from
    elsewhere: the run still knows it saw whole synthetic frames (it took them for unknown data
    and aligned, so every synthetic face was missed)."""
    import shutil
    from types import SimpleNamespace

    from hiva.predict.loader import default_align

    (tmp_path / "proj" / "set").mkdir(parents=True)
    (tmp_path / "proj" / "run").mkdir()
    shutil.copy(media["manifest"], tmp_path / "proj" / "set" / "manifest.parquet")
    cfg = SimpleNamespace(data="set/manifest.parquet", out="run")
    monkeypatch.chdir(tmp_path)
    assert default_align(cfg, tmp_path / "proj" / "run") == (
        False, "trained on whole synthetic frames")
    monkeypatch.chdir(tmp_path / "proj")
    assert default_align(cfg, Path("run")) == (False, "trained on whole synthetic frames")
    cfg.data = "gone/manifest.parquet"
    assert default_align(cfg, Path("run")) == (True, "training data unknown")


def test_explain_writes_pngs(tiny_run, media, cli, tmp_path):
    from PIL import Image

    out = tmp_path / "ex"
    cli("explain", media["face"], "--checkpoint", tiny_run, "--out", out, "--top-k", "2")
    for a in TINY_AUS:
        with Image.open(out / f"{au_column(a)}.png") as im:
            assert im.size[0] > 500
    assert (out / "grid.png").stat().st_size > 10_000
    rec = json.loads((out / "explain.json").read_text())
    au1 = rec["aus"]["AU01"]
    assert 0 <= au1["probability"] <= 1 and 0 < au1["peak_share"] <= 1
    assert len(au1["matched"]) == 2 and au1["matched"][0]["text"].startswith("AU1 description")
    assert 1.0 >= au1["matched"][0]["attention"] >= au1["matched"][1]["attention"] > 0.0


def test_explain_outlines_and_scores_each_au_region(tiny_run, media, tmp_path, monkeypatch):
    import hiva.predict.explain as ex
    from hiva.data.manifest import read_manifest
    from hiva.regions import au_discs, region_mask

    manifest = media["manifest"]
    df = read_manifest(manifest)
    face = df["path"].iloc[0]
    drawn = []
    real = ex._overlay

    def spy(ax, face, amap, title, region=None, dashed=False):
        drawn.append((title, region, dashed))
        return real(ax, face, amap, title, region, dashed)

    monkeypatch.setattr(ex, "_overlay", spy)
    rec = ex.explain(face, tiny_run, tmp_path / "ex", manifest=str(manifest), align=False,
                     device="cpu")
    per_au = drawn[:len(TINY_AUS)]  # the per-AU figures, then the grid's panels
    assert len(drawn) == 2 * len(TINY_AUS)
    masks = [r for _, r, _ in per_au]
    assert all(m is not None and m.any() and not d for _, m, d in per_au)
    assert not np.array_equal(masks[0], masks[4])  # AU1 (brows) is not AU12 (mouth corners)
    # The outline is the AU's region as the model saw the face: landmarks through its transform.
    row = df.iloc[0]
    # SIZE 256 → resize 36 → centre crop 32 (TINY_MODEL's input_size)
    pts = np.asarray(row["landmarks"]).reshape(-1, 2) * (36 / 256) - (36 - 32) / 2
    want = region_mask(au_discs(pts, "hiva-synth", [12])[0], 32, 32)
    assert (masks[4] == want).mean() > 0.97
    assert "region" in per_au[4][0] and "AU12" in per_au[4][0]
    for a in TINY_AUS:
        r = rec["aus"][au_column(a)]["region"]
        assert 0 <= r["energy"] <= 1 and r["pointing"] in (0.0, 1.0)
        assert 0 < r["energy_chance"] < 1
    # Without landmarks: no outline, no score.
    drawn.clear()
    rec = ex.explain(face, tiny_run, tmp_path / "ex2", align=False, device="cpu")
    assert all(r is None for _, r, _ in drawn) and "region" not in rec["aus"]["AU01"]
    with pytest.raises(HivaError, match="is not a row of"):
        ex.explain(media["face"], tiny_run, tmp_path / "ex3", manifest=str(manifest),
                   align=False, device="cpu")


def test_export_roundtrip_and_offline_push(tiny_run, media, cli, tmp_path):
    import shutil

    from hiva.predict import Detector

    exp = tmp_path / "export"
    cli("export", tiny_run, "--to", exp)
    for f in ("model.safetensors", "config.json", "aus.txt", "train_config.yaml", "README.md",
              "text_bank/manifest.json", "text_bank/embeddings.safetensors"):
        assert (exp / f).is_file(), f
    info = json.loads((exp / "config.json").read_text())
    assert info["aus"] == list(TINY_AUS) and info["align"] is False
    assert (exp / "aus.txt").read_text().splitlines()[0] == "AU01\tInner Brow Raiser"
    assert "synthetic" in (exp / "README.md").read_text()
    # the export stands alone: moved away from the run, it gives the same probabilities
    moved = tmp_path / "elsewhere"
    shutil.move(str(exp), moved)
    a = Detector(tiny_run).detect(media["folder"])
    b = Detector(moved).detect(media["folder"])
    assert b.attrs["thresholds"] == a.attrs["thresholds"]
    pd.testing.assert_frame_equal(a, b)

    r = cli("export", tiny_run, "--to", tmp_path / "e2", "--push", "me/tiny-hiva", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("hiva: error: cannot push to me/tiny-hiva: HF_HUB_OFFLINE=1")
    assert (tmp_path / "e2" / "model.safetensors").is_file()  # the local export is kept


@pytest.mark.parametrize("args,needle", [
    (["predict", "/no/such/clip.mp4", "--out", "x.csv"], "input /no/such/clip.mp4 does not exist"),
    (["predict", "{face}", "--out", "x.txt"], "end it in .csv or .parquet"),
    (["explain", "{face}", "--out", "ex"], "neither a `hiva train` run folder"),
])
def test_bad_input_is_one_line_error(args, needle, tiny_run, media, cli, tmp_path):
    ck = tmp_path if args[0] == "explain" else tiny_run
    args = [a.format(face=media["face"]) for a in args]
    r = cli(*args, "--checkpoint", ck, check=False)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("hiva: error: "), r.stderr
    assert needle in r.stderr


@pytest.mark.parametrize("kw,needle", [
    (dict(inputs=()), "give at least one image"),
    (dict(batch_size=0), "--batch-size must be ≥ 1, got 0"),
    (dict(out="x.txt"), "end it in .csv or .parquet"),
    (dict(weights="final"), "--weights 'final': use best or last"),
    (dict(device="tpu"), "--device 'tpu': use auto, cpu, cuda or cuda:N"),
    (dict(fold=0), "--fold must be ≥ 1"),
    (dict(model_threads=0), "--model-threads must be ≥ 1"),
    (dict(threshold="1.5"), "--threshold '1.5': pass auto or a number in (0, 1)"),
    (dict(threshold="high"), "--threshold 'high'"),
])
def test_predict_config_names_each_bad_value(kw, needle):
    from hiva.errors import HivaError
    from hiva.predict.settings import PredictConfig

    base = dict(inputs=("a.png",), checkpoint="run", out="x.csv")
    with pytest.raises(HivaError) as e:
        PredictConfig(**{**base, **kw})
    assert str(e.value).startswith("bad predict config: ") and needle in str(e.value)
    assert PredictConfig(**base, threshold="0.4", device="cuda:1").threshold == "0.4"


def test_expand_inputs_and_unreadable_video(tmp_path, media):
    from hiva.errors import HivaError
    from hiva.predict.media import Source, Unreadable, expand_inputs, iter_frames

    srcs = expand_inputs([media["folder"], media["video"]])
    assert [s.kind for s in srcs] == ["image"] * 5 + ["video"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(HivaError, match="holds no images or videos"):
        expand_inputs([tmp_path / "empty"])
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(Unreadable):
        list(iter_frames(Source(str(bad), "video")))


def test_run_path_finds_the_bank_the_run_was_trained_with(tmp_path, monkeypatch):
    """A run's relative text bank is relative to where training ran (the run folder less its
    relative ``out``), even opened from a folder holding another bank of the same name; an
    export's is relative to the export."""
    from types import SimpleNamespace

    from hiva.runs import run_path

    proj, other = tmp_path / "proj", tmp_path / "other"
    (proj / "out/demo/run").mkdir(parents=True)
    (proj / "out/demo/text-bank").mkdir()
    (other / "out/demo/text-bank").mkdir(parents=True)
    monkeypatch.chdir(other)
    cfg = SimpleNamespace(out="out/demo/run")
    got = run_path("out/demo/text-bank", cfg.out, proj / "out/demo/run")
    assert got.resolve() == (proj / "out/demo/text-bank").resolve()
    # trained with an absolute --out: the bank is looked for here, as before
    here = run_path("out/demo/text-bank", "/abs/run", proj / "out/demo/run")
    assert here.resolve() == (other / "out/demo/text-bank").resolve()
    (tmp_path / "exp/text_bank").mkdir(parents=True)
    assert run_path("text_bank", cfg.out, tmp_path / "exp") == tmp_path / "exp/text_bank"
    assert run_path("/abs/bank", cfg.out, tmp_path / "exp") == Path("/abs/bank")
