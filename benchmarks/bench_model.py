"""Forward+backward throughput of HiVA against its backbone alone, on the CPU or a CUDA device.

For each backbone: one timing subprocess builds the full model and steps the full model (with its
loss) and the bare backbone (forward_features, mean, backward) alternately, keeping the best of
each, so load from other processes hits both alike; then one subprocess per mode reports its own
peak memory (RSS on the CPU, the allocator's peak on CUDA). Prints images/s, the heads' share of
the step time (goal <= 15%), memory.

    .venv/bin/python benchmarks/bench_model.py [--backbones tf_efficientnet_lite0 resnet18]
        [--batch 16] [--size 224] [--iters 4] [--bf16] [--device cpu|cuda] [--compile]

--compile: both the full model and the bare backbone through torch.compile (as ``hiva train
--compile``); the warm-up step compiles, and each memory subprocess compiles again.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def worker(backbone: str, mode: str, batch: int, size: int, iters: int, bf16: bool,
           device: str = "cpu", compile_: bool = False) -> dict:
    import contextlib

    import torch

    from hiva.model.config import ModelConfig
    from hiva.model.hiva import HiVA
    from hiva.model.losses import HiVALoss

    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, pretrained=None, input_size=size)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    model = HiVA(cfg).to(dev).train()
    loss_fn = HiVALoss(cfg)
    images = torch.randn(batch, 3, size, size, device=dev)
    text = torch.randn(cfg.num_aus, 8, cfg.text_width, device=dev)
    targets = (torch.rand(batch, cfg.num_aus, device=dev) > 0.7).float()
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    net, bb = (torch.compile(model), torch.compile(model.backbone)) if compile_ else (
        model, model.backbone)

    def step(which: str) -> tuple[float, float]:
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=True)
        with amp:
            if which == "full":
                loss, _ = loss_fn(net(images, text), targets)
            else:
                loss = bb(images).float().mean()
        loss.backward()
        if cuda:
            torch.cuda.synchronize()
        # CPU time (all threads) is far less disturbed than wall time on a shared machine.
        return time.perf_counter() - t0, time.process_time() - c0

    modes = ("backbone", "full") if mode == "pair" else (mode,)
    for m in modes:
        step(m)  # warm-up: allocator, oneDNN kernel choice
    best = {m: float("inf") for m in modes}
    cpu = {m: float("inf") for m in modes}
    for _ in range(iters):
        for m in modes:
            w, c = step(m)
            best[m], cpu[m] = min(best[m], w), min(cpu[m], c)
    return {
        "params": {"full": sum(p.numel() for p in model.parameters()),
                   "backbone": sum(p.numel() for p in model.backbone.parameters())},
        "step_s": best,
        "cpu_s": cpu,
        "peak_rss_mb": (torch.cuda.max_memory_allocated(dev) / 2**20 if cuda
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
    }


def _run(a, bb: str, mode: str, iters: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", bb, mode, "--batch", str(a.batch),
           "--size", str(a.size), "--iters", str(iters), "--device", a.device] + (
               ["--bf16"] if a.bf16 else []) + (["--compile"] if a.compile else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["tf_efficientnet_lite0", "resnet18"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:k]")
    ap.add_argument("--compile", action="store_true", help="torch.compile both modes")
    ap.add_argument("--worker", nargs=2, metavar=("BACKBONE", "MODE"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker, a.batch, a.size, a.iters, a.bf16, a.device,
                                a.compile)))
        return
    with open("/proc/loadavg") as f:
        print(f"loadavg before: {f.read().strip()}", flush=True)
    print(f"batch {a.batch}, {a.size}x{a.size}, forward+backward, best of {a.iters} interleaved, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}, 12 AUs, M=8 descriptions per AU, "
          f"device {a.device}{', torch.compile' if a.compile else ''}")
    mem_name = "GPU MB" if a.device.startswith("cuda") else "peak MB"
    print(f"{'backbone':<24}{'mode':<10}{'params':>12}{'img/s':>9}{'step s':>9}{mem_name:>9}",
          flush=True)
    for bb in a.backbones:
        t = _run(a, bb, "pair", a.iters)
        for mode in ("backbone", "full"):
            mem = _run(a, bb, mode, 1)["peak_rss_mb"]
            s = t["step_s"][mode]
            print(f"{bb:<24}{mode:<10}{t['params'][mode]:>12,}{a.batch / s:>9.2f}{s:>9.3f}"
                  f"{mem:>9.0f}", flush=True)
        ratio = t["step_s"]["full"] / t["step_s"]["backbone"]
        cratio = t["cpu_s"]["full"] / t["cpu_s"]["backbone"]
        print(f"{bb:<24}heads' share of step time: wall {1 - 1 / ratio:.1%}, CPU time "
              f"{1 - 1 / cratio:.1%} (goal <= 15%); full/backbone ratio wall {ratio:.2f}, "
              f"CPU {cratio:.2f}; threads {t['threads']}; {t['device']}", flush=True)
    with open("/proc/loadavg") as f:
        print(f"loadavg after: {f.read().strip()}")


if __name__ == "__main__":
    main()
