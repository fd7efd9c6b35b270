from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hiva.data.dataset import AUDataset, collate_skip
from hiva.data.transforms import eval_transform, train_transform


def _manifest(tmp_path, n=6):
    rows = []
    for i in range(n):
        p = tmp_path / f"{i}.jpg"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), np.uint8)).save(p)
        rows.append({"path": str(p), "subject": "s", "sequence": "q", "frame": i,
                     "AU01": 1 if i % 2 else 0, "AU12": None if i == 0 else 1})
    df = pd.DataFrame(rows)
    df["AU01"] = df["AU01"].astype("Int8")
    df["AU12"] = df["AU12"].astype("Int8")
    return df


def test_items_and_masks(tmp_path):
    ds = AUDataset(_manifest(tmp_path), (1, 12), eval_transform(size=32, resize=36))
    it = ds[0]
    assert it["image"].shape == (3, 32, 32) and it["image"].dtype == torch.float32
    assert it["target"].tolist() == [0.0, 0.0]
    assert it["mask"].tolist() == [True, False]
    assert ds[1]["target"].tolist() == [1.0, 1.0]


def test_corrupt_and_missing_images_are_skipped_and_counted(tmp_path):
    df = _manifest(tmp_path)
    (tmp_path / "2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "4.jpg").unlink()
    ds = AUDataset(df, (1, 12), train_transform(size=32, resize=36))
    batches = list(DataLoader(ds, batch_size=3, collate_fn=collate_skip))
    assert sum(len(b["index"]) for b in batches) == 4
    assert ds.bad == 2
    assert sum(b["skipped"] for b in batches) == 2
    two = list(DataLoader(ds, batch_size=3, collate_fn=collate_skip, num_workers=2))
    assert sum(b["skipped"] for b in two) == 2  # counted even when workers hold the counters
    assert sorted(i for b in batches for i in b["index"].tolist()) == [0, 1, 3, 5]
    assert collate_skip([None, None]) is None


def test_train_transform_augments(tmp_path):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    t = train_transform(size=48, resize=56)
    torch.manual_seed(0)
    a, b = t(img), t(img)
    assert a.shape == (3, 48, 48)
    assert not torch.equal(a, b)
    e = eval_transform(size=48, resize=56)
    assert torch.equal(e(img), e(img))


def _marked_frame(h: int, w: int, band: float = 0.15) -> Image.Image:
    """Grey frame whose top rows are red and bottom rows blue (or left/right when wide)."""
    arr = np.full((h, w, 3), 128, np.uint8)
    if h >= w:
        b = round(h * band)
        arr[:b] = (255, 0, 0)
        arr[-b:] = (0, 0, 255)
    else:
        b = round(w * band)
        arr[:, :b] = (255, 0, 0)
        arr[:, -b:] = (0, 0, 255)
    return Image.fromarray(arr)


def _rgb(t: torch.Tensor) -> torch.Tensor:
    from hiva.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    return t * std[:, None, None] + mean[:, None, None]


def _is(px: torch.Tensor, colour: str) -> bool:
    r, g, b = px.tolist()
    return (r > 0.8 and g < 0.2 and b < 0.2) if colour == "red" else (b > 0.8 and r < 0.2)


def test_transforms_keep_the_whole_tall_frame():
    tall = _marked_frame(120, 30)  # 1:4, like a portrait phone frame
    out = _rgb(eval_transform(size=32, resize=36)(tall))
    assert out.shape == (3, 32, 32)
    assert _is(out[:, 0, 16], "red") and _is(out[:, -1, 16], "blue")  # brows and chin stay
    wide = _rgb(eval_transform(size=32, resize=36)(_marked_frame(30, 120)))
    assert _is(wide[:, 16, 0], "red") and _is(wide[:, 16, -1], "blue")
    t = train_transform(size=32, resize=36, jitter=0, flip=False)
    torch.manual_seed(0)
    for _ in range(5):  # any random crop keeps both bands
        out = _rgb(t(tall))
        assert _is(out[:, 0, 16], "red") and _is(out[:, -1, 16], "blue")


def test_square_images_are_not_padded():
    from torchvision.transforms import v2

    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), np.uint8))
    plain = v2.Compose([v2.ToImage(), v2.Resize(36, antialias=True), v2.CenterCrop(32),
                        v2.ToDtype(torch.float32, scale=True),
                        v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    assert torch.equal(eval_transform(size=32, resize=36)(img), plain(img))


def test_warn_if_unaligned(tmp_path, capsys):
    from hiva.data.manifest import face_framing, warn_if_unaligned, write_manifest

    df = _manifest(tmp_path, n=2)
    write_manifest(df, tmp_path / "raw.parquet", {"source": "csv"})
    write_manifest(df, tmp_path / "al.parquet", {"source": "csv", "aligned": True})
    write_manifest(df, tmp_path / "syn.parquet", {"source": "synthetic", "synthetic": True})
    from hiva.data.manifest import read_manifest

    raw, al = read_manifest(tmp_path / "raw.parquet"), read_manifest(tmp_path / "al.parquet")
    assert face_framing(raw) == "unaligned" and face_framing(al) == "aligned"
    assert face_framing(tmp_path / "syn.parquet") == "synthetic"
    assert warn_if_unaligned(al) is None and warn_if_unaligned({"synthetic": True}) is None
    assert capsys.readouterr().err == ""
    line = warn_if_unaligned(raw)
    err = capsys.readouterr().err
    assert err == line + "\n" and "faces are not aligned" in err and "hiva data align" in err
    assert warn_if_unaligned(df) == line  # a DataFrame with no metadata: unaligned
    seen = []
    warn_if_unaligned(tmp_path / "raw.parquet", echo=seen.append)
    assert seen == [line]


def test_augmentation_depends_on_seed_epoch_index_not_on_workers(tmp_path):
    df = _manifest(tmp_path, n=6)
    ds = AUDataset(df, (1, 12), train_transform(size=32, resize=36), seed=3)
    ds.set_epoch(2)
    torch.manual_seed(123)
    main = {i: ds[i]["image"] for i in range(6)}
    after = torch.rand(4)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(4))  # the caller's RNG is as if nothing had been read
    for workers, shuffle in ((2, False), (0, True)):
        torch.manual_seed(workers)
        loader = DataLoader(ds, batch_size=2, num_workers=workers, shuffle=shuffle,
                            collate_fn=collate_skip)
        seen = 0
        for b in loader:
            for j, i in enumerate(b["index"].tolist()):
                assert torch.equal(b["image"][j], main[i]), (workers, i)
                seen += 1
        assert seen == 6
    ds.set_epoch(3)
    assert all(not torch.equal(ds[i]["image"], main[i]) for i in range(6))
    other = AUDataset(df, (1, 12), train_transform(size=32, resize=36), seed=4)
    other.set_epoch(2)
    assert not torch.equal(other[0]["image"], main[0])
    same = AUDataset(df.assign(path=df["path"].iloc[0]), (1, 12),
                     train_transform(size=32, resize=36), seed=3)  # one image, six rows
    assert len({same[i]["image"].sum().item() for i in range(6)}) > 1  # the index matters


def test_transforms_pickle_for_spawned_workers():
    import pickle

    t = train_transform(size=32, resize=36)
    assert repr(pickle.loads(pickle.dumps(t))) == repr(t)
