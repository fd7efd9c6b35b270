"""Train throughput: images/s of a full HiVA training step fed by the real loader (AUDataset +
train transform + DataLoader workers, as ``hiva train`` builds it) against the same step on a
tensor already in memory (model forward + backward + AdamW alone), with the loader reading the
image files and reading a pack of them (``hiva data pack``). Goal: loader ≥ 90% of model-only.

    .venv/bin/python benchmarks/bench_train.py [--manifest M] [--backbones lite0,resnet18]
        [--batch 16] [--size 224] [--steps 8] [--workers 2] [--amp off|bf16] [--device cpu|cuda]
        [--source-size 256]

Without --manifest it renders a small synthetic set of JPEGs at --source-size (256: what `hiva
data align` writes; resized to 256 → crop 224) and packs it at the trainer's resize. Model-only,
image-fed and pack-fed steps alternate, so load from other processes hits all alike. Also prints
each loader alone (no model: the CPU its decoding and augmenting need). Print-only: no
assertion. On a shared machine give `cat /proc/loadavg` beside it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def bench(backbone: str, manifests: dict, args) -> dict:
    import torch

    from hiva.data.dataset import AUDataset
    from hiva.data.manifest import manifest_aus, read_manifest
    from hiva.data.transforms import train_transform
    from hiva.model.factory import build_model
    from hiva.model.losses import HiVALoss
    from hiva.model.text import sample_text
    from hiva.textbank import load_text
    from hiva.train.config import TrainConfig
    from hiva.train.steps import batch_to, forward, make_loader, param_groups

    pretrained = "shipped" if backbone == "lite0" else "none"
    cfg = TrainConfig(model=dict(backbone=backbone, pretrained=pretrained, input_size=args.size,
                                 text_mode="random"),
                      batch_size=args.batch, num_workers=args.workers, amp=args.amp)
    dfs = {k: read_manifest(m) for k, m in manifests.items()}
    aus = manifest_aus(dfs["images"])[:12]
    mc = cfg.model_config(aus)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    model = build_model(mc, dev, cfg.channels_last)
    model.train()
    loss_fn = HiVALoss(mc)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=1e-4)
    amp = torch.bfloat16 if args.amp == "bf16" else None
    mean, std = model.normalisation()
    tf = train_transform(mean, std, size=args.size, resize=cfg.resize_to, normalise=False)
    sets = {k: AUDataset(df, aus, tf, seed=0) for k, df in dfs.items()}

    bank = load_text(mc, aus).bank  # random unit vectors, kept and sampled as the trainer does
    gen = torch.Generator().manual_seed(0)

    def step(batch):
        x, y, m = batch_to(batch, dev, channels_last=True)
        txt = sample_text(bank, aus, cfg.text_per_au, gen, train=True)
        out = forward(model, x, txt, amp)
        loss, _ = loss_fn(out, y, m)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    n = args.steps + 2
    n_items = len(sets["images"])
    idx = (list(range(n_items)) * (1 + n * args.batch // n_items))[: n * args.batch]
    loaders = {k: make_loader(ds, idx, args.batch, cfg, dev, 0, drop_last=True)
               for k, ds in sets.items()}
    fixed = next(iter(loaders["images"]))

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(batches) -> float:
        """Seconds of the steps over ``batches`` after the first two (warm-up)."""
        for i, b in enumerate(batches):
            if i == 2:
                sync()
                t1 = time.perf_counter()
            step(b)
        sync()
        return time.perf_counter() - t1

    # Interleave model-only and loader-fed epochs of steps so load noise hits all alike.
    t = dict.fromkeys(["model", *loaders], 0.0)
    for _rep in range(2):
        t["model"] += timed([fixed] * n)
        for k, loader in loaders.items():
            t[k] += timed(loader)  # its workers end with the loop's iterator
    imgs = 2 * args.steps * args.batch
    out = {k: imgs / v for k, v in t.items()}
    for k, loader in loaders.items():  # each loader alone (same workers, no model)
        t1 = time.perf_counter()
        got = sum(len(b["image"]) for b in loader)
        out[f"{k} alone"] = got / (time.perf_counter() - t1)
    return out


def per_step_ms(manifest: str, args, reps: int = 50) -> list[tuple[str, float]]:
    """Milliseconds of one CPU thread per frame for each step of the train transform (on the
    first frame of ``manifest``), decoding included: where a loader worker's time goes."""
    import torch
    from PIL import Image

    from hiva.data.image_files import as_rgb
    from hiva.data.manifest import read_manifest
    from hiva.data.transforms import train_transform

    path = read_manifest(manifest)["path"].iloc[0]
    resize = round(args.size * 8 / 7)
    steps = train_transform(size=args.size, resize=resize, normalise=False).transforms
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    for _ in range(reps):
        with Image.open(path) as im:
            x = as_rgb(im)
    out = [("decode", (time.perf_counter() - t0) / reps * 1e3)]
    for step in steps:
        t0 = time.perf_counter()
        for _ in range(reps):
            y = step(x)
        out.append((type(step).__name__, (time.perf_counter() - t0) / reps * 1e3))
        x = y
    torch.set_num_threads(os.cpu_count() or 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest")
    ap.add_argument("--backbones", default="lite0,resnet18")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--amp", default="off", choices=("off", "bf16"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:k]")
    ap.add_argument("--source-size", type=int, default=256,
                    help="side of the rendered JPEGs without --manifest")
    args = ap.parse_args()
    import torch

    from hiva.data.pack import pack_manifest

    manifest = args.manifest
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    if manifest is None:
        from hiva.data.synth import render_synthetic

        manifest = str(render_synthetic(os.path.join(tmp, "set"), subjects=8, per_subject=16,
                                        size=args.source_size, workers=1, grid=False,
                                        jpeg_quality=90, progress=False))
    resize = round(args.size * 8 / 7)  # the trainer's resize_to
    packed = pack_manifest(manifest, os.path.join(tmp, "pack"), size=resize,
                           workers=args.workers, progress=False)["manifest"]
    manifests = {"images": manifest, "pack": str(packed)}
    cuda = args.device.startswith("cuda")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.size}px, {args.steps}×2 timed steps, workers {args.workers}, amp {args.amp}, "
          f"device {torch.cuda.get_device_name(args.device) if cuda else 'cpu'}")
    print(f"loadavg before: {open('/proc/loadavg').read().strip()}")
    print(f"{'backbone':10} {'source':7} {'model-only img/s':>17} {'with loader img/s':>18} "
          f"{'ratio':>7} {'loader alone img/s':>19}")
    for bb in args.backbones.split(","):
        r = bench(bb, manifests, args)
        for k in manifests:
            print(f"{bb:10} {k:7} {r['model']:17.1f} {r[k]:18.1f} {100 * r[k] / r['model']:6.1f}% "
                  f"{r[k + ' alone']:19.1f}", flush=True)
    split = per_step_ms(manifest, args)
    total = sum(ms for _, ms in split)
    print("one loader worker's CPU per frame (ms, one thread): " + ", ".join(
        f"{name} {ms:.2f} ({100 * ms / total:.0f}%)" for name, ms in split))
    print(f"loadavg after: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
