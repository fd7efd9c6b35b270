"""``hiva data pack``: the pack gives the tensors its images give (square synthetic faces with
landmarks, frames of other shapes padded), skips and reports an unreadable frame, resumes after
a kill or damage writing only what is missing, and ``verify-pack`` finds a damaged shard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hiva.data import pack as packing
from hiva.data.dataset import AUDataset, collate_skip
from hiva.data.manifest import manifest_aus, read_manifest, write_manifest
from hiva.data.transforms import IMAGENET_MEAN, eval_transform, pad_fill, train_transform
from hiva.errors import HivaError
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    from hiva.data.synth import render_synthetic

    out = tmp_path_factory.mktemp("pack_synth")
    return render_synthetic(out / "set", subjects=3, per_subject=4, seed=0, size=64, workers=1,
                            grid=False, progress=False)


@pytest.fixture
def shapes(tmp_path) -> Path:
    """Frames of four shapes (tall, wide, square, one pixel high) with random pixels."""
    rng = np.random.default_rng(0)
    rows = []
    for i, (h, w) in enumerate([(40, 64), (64, 40), (50, 50), (1, 30)]):
        p = tmp_path / "img" / f"{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        rows.append({"path": str(p), "subject": f"S{i % 2}", "sequence": "", "frame": i,
                     "AU01": i % 2, "AU12": 1 - i % 2})
    return write_manifest(pd.DataFrame(rows), tmp_path / "m.parquet", {"source": "test"})


def _same_items(a: AUDataset, b: AUDataset) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert set(x) == set(y)
        for k in x:
            if k != "index":  # regions carry NaN (no disc): compared with NaN as a value
                assert torch.equal(torch.nan_to_num(x[k], 7.0), torch.nan_to_num(y[k], 7.0)), \
                    (i, k)


@pytest.mark.parametrize("tf", ["train", "eval"])
def test_a_pack_gives_the_tensors_and_regions_its_images_give(tf, faces, tmp_path):
    r = packing.pack_manifest(faces, tmp_path / "pack", size=73, shard_size=5, workers=0,
                              progress=False)
    assert (r["frames"], r["shards"], r["skipped"], r["padded"]) == (12, 3, 0, 0)
    src, packed = read_manifest(faces), read_manifest(r["manifest"])
    assert packed["path"].tolist() == src["path"].tolist()  # provenance: the source images
    assert packed["subject"].tolist() == src["subject"].tolist()
    aus = manifest_aus(src)
    t = (train_transform(size=64, resize=73) if tf == "train"
         else eval_transform(size=64, resize=73))
    a, b = AUDataset(src, aus, t, seed=3), AUDataset(packed, aus, t, seed=3)
    assert b.pack is not None and a.landmarks is not None and b.neutral is not None
    _same_items(a, b)
    gone = [Path(src["path"][i]) for i in (0, 7)]
    try:  # and the pixels do come from the shards: the image files are not read
        for p in gone:
            p.rename(p.with_suffix(".gone"))
        _same_items(AUDataset(packed, aus, t, seed=3), b)
    finally:
        for p in gone:
            p.with_suffix(".gone").rename(p)


def test_frames_of_other_shapes_are_padded_like_the_trainer_pads_them(shapes, tmp_path):
    fill = pad_fill(IMAGENET_MEAN)
    assert tuple(fill) == packing.IMAGENET_FILL  # the CLI's default is the trainer's fill
    r = packing.pack_manifest(shapes, tmp_path / "pack", size=36, shard_size=3, workers=2,
                              progress=False)
    assert (r["frames"], r["padded"]) == (4, 3)
    t = train_transform(size=32, resize=36)
    _same_items(AUDataset(read_manifest(shapes), (1, 12), t, seed=1),
                AUDataset(read_manifest(r["manifest"]), (1, 12), t, seed=1))


def test_an_unreadable_frame_is_skipped_and_reported_and_the_rest_kept(shapes, tmp_path):
    df = read_manifest(shapes)
    Path(df["path"][1]).write_bytes(b"not a png")
    r = packing.pack_manifest(shapes, tmp_path / "pack", size=36, shard_size=3, workers=0,
                              progress=False)
    assert (r["frames"], r["skipped"]) == (3, 1)
    assert r["skipped_example"][0] == df["path"][1]
    packed = read_manifest(r["manifest"])
    assert packed["frame"].tolist() == [0, 2, 3]
    t = eval_transform(size=32, resize=36)
    _same_items(AUDataset(df.drop(index=1), (1, 12), t), AUDataset(packed, (1, 12), t))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("shard-*"))}


def test_a_rerun_resumes_a_killed_pack_and_rewrites_only_damaged_shards(faces, tmp_path,
                                                                      monkeypatch):
    whole = tmp_path / "whole"
    packing.pack_manifest(faces, whole, size=40, shard_size=5, workers=0, progress=False)
    out = tmp_path / "pack"
    real, written = packing._write_shard, []

    def killed_after_one(folder, j, *a):
        if written:
            (folder / (packing.shard_name(j) + ".partial")).write_bytes(b"half")
            raise KeyboardInterrupt
        written.append(j)
        return real(folder, j, *a)

    monkeypatch.setattr(packing, "_write_shard", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        packing.pack_manifest(faces, out, size=40, shard_size=5, workers=0, progress=False)
    assert not (out / packing.MANIFEST).exists()  # no manifest until every shard is in
    monkeypatch.setattr(packing, "_write_shard", real)
    r = packing.pack_manifest(faces, out, size=40, shard_size=5, workers=0, progress=False)
    assert r["reused"] == 1 and r["shards"] == 3
    assert _files(out) == _files(whole)
    assert not list(out.glob("*.partial"))
    # Damage one shard, delete another's landmarks: the rerun rewrites those two only.
    b = bytearray((out / packing.shard_name(1)).read_bytes())
    b[-1] ^= 0xFF
    (out / packing.shard_name(1)).write_bytes(bytes(b))
    (out / packing.marks_name(2)).unlink()
    assert packing.verify_pack(out) == [packing.shard_name(1), packing.shard_name(2)]
    r = packing.pack_manifest(faces, out, size=40, shard_size=5, workers=0, progress=False)
    assert r["reused"] == 1 and packing.verify_pack(out) == []
    assert _files(out) == _files(whole)


def test_a_pack_of_other_settings_is_replaced_not_mixed(faces, tmp_path):
    out = tmp_path / "pack"
    packing.pack_manifest(faces, out, size=40, shard_size=5, workers=0, progress=False)
    r = packing.pack_manifest(faces, out, size=48, shard_size=5, workers=0, progress=False)
    assert r["reused"] == 0
    assert np.load(out / packing.shard_name(0)).shape == (5, 48, 48, 3)
    assert json.loads((out / packing.INDEX).read_text())["size"] == 48


def test_packing_refuses_a_folder_of_other_files_and_a_pack_manifest(faces, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    (mine / packing.MANIFEST).write_text("not ours")
    with pytest.raises(HivaError, match="did not write"):
        packing.pack_manifest(faces, mine, size=40, workers=0, progress=False)
    assert (mine / packing.MANIFEST).read_text() == "not ours"
    r = packing.pack_manifest(faces, tmp_path / "pack", size=40, workers=0, progress=False)
    with pytest.raises(HivaError, match="pack's manifest already"):
        packing.pack_manifest(r["manifest"], tmp_path / "again", size=40, workers=0,
                              progress=False)


def test_the_trainer_warns_when_a_pack_was_made_for_other_settings(shapes, tmp_path):
    r = packing.pack_manifest(shapes, tmp_path / "pack", size=36, workers=0, progress=False)
    df = read_manifest(r["manifest"])
    fill = pad_fill(IMAGENET_MEAN)
    assert packing.pack_warnings(df, fill, 36) == []
    assert packing.pack_warnings(read_manifest(shapes), [128] * 3, 40) == []  # not a pack
    lines = packing.pack_warnings(df, [128, 128, 128], 40)
    assert len(lines) == 2
    assert "resizes to 40" in lines[0] and "--size 40" in lines[0]
    assert "3 frames" in lines[1] and "--fill 128,128,128" in lines[1]


def test_a_loader_over_a_pack_gives_the_batches_of_the_images(faces, tmp_path):
    """Through DataLoader workers (each maps the shards itself) and collation."""
    from torch.utils.data import DataLoader

    r = packing.pack_manifest(faces, tmp_path / "pack", size=73, shard_size=5, workers=0,
                              progress=False)
    aus = manifest_aus(read_manifest(faces))
    t = train_transform(size=64, resize=73)
    order = list(np.random.default_rng(0).permutation(12))

    def batches(m):
        ds = AUDataset(read_manifest(m), aus, t, seed=5)
        return list(DataLoader(ds, batch_size=4, sampler=order, num_workers=2,
                               collate_fn=collate_skip))

    for x, y in zip(batches(faces), batches(r["manifest"]), strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["target"], y["target"])
        assert torch.equal(x["index"], y["index"])


def test_cli_pack_then_verify_names_a_damaged_shard(faces, tmp_path):
    out = tmp_path / "pack"
    r = run_cli("data", "pack", str(faces), "--out", str(out), "--size", "40",
                "--shard-size", "5", "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert "packed 12 frames (3 shards" in r.stdout
    assert run_cli("data", "verify-pack", str(out)).returncode == 0
    (out / packing.shard_name(2)).write_bytes(b"x")
    r = run_cli("data", "verify-pack", str(out), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert packing.shard_name(2) in r.stderr and "rerun `hiva data pack`" in r.stderr
    r = run_cli("data", "pack", str(faces), "--out", str(out), "--fill", "1,2", check=False)
    assert r.returncode == 1 and "--fill" in r.stderr and "Traceback" not in r.stderr
