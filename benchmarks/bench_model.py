"""Forward+backward throughput of HiVA on the CPU against its backbone alone.

For each backbone, runs two worker subprocesses (so each peak RSS is its own): the full HiVA model
with its loss, and the bare timm backbone (forward_features, mean, backward). Prints images/s,
the heads' share of the step time (goal ≤ 15%) and peak memory (ru_maxrss).

    .venv/bin/python benchmarks/bench_model.py [--backbones tf_efficientnet_lite0 resnet18]
        [--batch 16] [--size 224] [--iters 3] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def worker(backbone: str, mode: str, batch: int, size: int, iters: int, bf16: bool) -> dict:
    import contextlib

    import torch

    from hiva.model.config import ModelConfig
    from hiva.model.hiva import HiVA
    from hiva.model.losses import HiVALoss

    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, pretrained=None, input_size=size)
    model = HiVA(cfg).train()
    loss_fn = HiVALoss(cfg)
    images = torch.randn(batch, 3, size, size)
    text = torch.randn(cfg.num_aus, 8, cfg.text_dim)
    targets = (torch.rand(batch, cfg.num_aus) > 0.7).float()
    net = model if mode == "full" else model.backbone
    params = sum(p.numel() for p in net.parameters())
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        net.zero_grad(set_to_none=True)
        with amp:
            if mode == "full":
                loss, _ = loss_fn(model(images, text), targets)
            else:
                loss = model.backbone(images).float().mean()
        loss.backward()

    step()  # warm-up: allocator, oneDNN kernel choice
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "backbone": backbone,
        "mode": mode,
        "params": params,
        "step_s": best,
        "images_per_s": batch / best,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["tf_efficientnet_lite0", "resnet18"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("BACKBONE", "MODE"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker, a.batch, a.size, a.iters, a.bf16)))
        return
    with open("/proc/loadavg") as f:
        print(f"loadavg before: {f.read().strip()}")
    print(f"batch {a.batch}, {a.size}x{a.size}, forward+backward, best of {a.iters}, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}, 12 AUs, M=8")
    hdr = f"{'backbone':<24}{'mode':<10}{'params':>12}{'img/s':>9}{'step s':>9}{'peak MB':>9}"
    print(hdr)
    for bb in a.backbones:
        res = {}
        for mode in ("backbone", "full"):
            cmd = [sys.executable, __file__, "--worker", bb, mode, "--batch", str(a.batch),
                   "--size", str(a.size), "--iters", str(a.iters)] + (["--bf16"] if a.bf16 else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = res[mode] = json.loads(out.strip().splitlines()[-1])
            print(f"{bb:<24}{mode:<10}{r['params']:>12,}{r['images_per_s']:>9.1f}"
                  f"{r['step_s']:>9.2f}{r['peak_rss_mb']:>9.0f}")
        share = 1 - res["backbone"]["step_s"] / res["full"]["step_s"]
        print(f"{bb:<24}heads' share of step time: {share:.1%} (goal <= 15%); "
              f"full/backbone time ratio {res['full']['step_s'] / res['backbone']['step_s']:.2f}")
    with open("/proc/loadavg") as f:
        print(f"loadavg after: {f.read().strip()}")


if __name__ == "__main__":
    main()
