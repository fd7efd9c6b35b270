"""Train-step throughput of hiva's ME-GraphAU against the authors' code, and of HiVA against
ME-GraphAU, on the same batch, backbone and input size, in one process.

    .venv/bin/python benchmarks/bench_megraphau.py --theirs PATH/TO/ME-GraphAU \
        [--arch resnet18] [--batch 16] [--size 224] [--iters 5] [--device cpu|cuda]

``--theirs``: a checkout of github.com/CVI-SZU/ME-GraphAU (MIT), used as it is and never copied
into hiva; without it only the hiva rows are printed. A step is forward, their weighted asymmetric
loss (+ 0.05 x the edge cross-entropy in stage 2; the same loss code for both, on outputs of the
same meaning), backward and an AdamW step; both models start from random weights (their
ImageNet loaders are bypassed). Steps alternate between the models, and the best of ``--iters``
is kept, so load from other processes hits both alike. Goal: hiva / theirs >= 1.0.

Their stage-2 graph network sets its edge matrices only on CUDA (``start``/``end`` are unbound
on the CPU); on the CPU this script adds that one assignment to their forward at run time.
Print-only: no assertion.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import textwrap
import time
import types

THEIR_ARCH = {"resnet18": "resnet18", "resnet50": "resnet50", "resnet101": "resnet101",
              "swin_tiny_patch4_window7_224": "swin_transformer_tiny",
              "swin_small_patch4_window7_224": "swin_transformer_small",
              "swin_base_patch4_window7_224": "swin_transformer_base"}


def their_model(root: str, stage: int, arch: str, n: int, device, source: str = "megraphau"):
    """Their MEFARG (``source`` megraphau: the repository's root code; opengraphau: its
    OpenGraphAU folder, 27 + 14 outputs) with random weights, on ``device``."""
    import os

    if source == "opengraphau":
        root = os.path.join(root, "OpenGraphAU")
    for m in [m for m in sys.modules if m == "model" or m.startswith("model.")]:
        del sys.modules[m]
    sys.path.insert(0, root)
    try:
        mod = importlib.import_module("model.ANFL" if stage == 1 else "model.MEFL")
    finally:
        sys.path.remove(root)

    def no_download(make):
        return lambda *a, **k: make(pretrained=False)

    for name in set(THEIR_ARCH.values()):
        setattr(mod, name, no_download(getattr(mod, name)))
    if stage == 2 and device.type == "cpu" and source == "megraphau":
        src = textwrap.dedent(inspect.getsource(mod.GNN.forward))
        src = src.replace("dev = x.get_device()\n",
                          "dev = x.get_device()\n    start, end = self.start, self.end\n", 1)
        ns: dict = {}
        exec(compile(src, "their MEFL.GNN.forward (CPU branch added)", "exec"), mod.__dict__, ns)
        mod.GNN.forward = ns["forward"]
    kw = (dict(num_classes=n) if source == "megraphau"
          else dict(num_main_classes=27, num_sub_classes=14))
    kw["backbone"] = THEIR_ARCH.get(arch, arch)
    if stage == 1:
        kw.update(neighbor_num=4 if n != 8 else 3, metric="dots")
    return mod.MEFARG(**kw).to(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--theirs", help="checkout of CVI-SZU/ME-GraphAU")
    ap.add_argument("--arch", default="resnet18", choices=sorted(THEIR_ARCH))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    import torch

    from hiva.facs import AU_SETS
    from hiva.model.config import ModelConfig
    from hiva.model.factory import build_model
    from hiva.model.hiva import HiVAOutput
    from hiva.model.losses import build_loss

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    aus = AU_SETS["bp4d"]
    n = len(aus)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    y = (torch.rand(a.batch, n, device=dev) > 0.7).float()
    mask = torch.ones_like(y, dtype=torch.bool)

    def wrap(out):
        if isinstance(out, HiVAOutput):
            return out
        probs, edges = out if isinstance(out, tuple) else (out, None)
        return types.SimpleNamespace(probs=probs, edge_logits=edges)

    models: dict[str, tuple] = {}
    for stage in (1, 2):
        mc = ModelConfig(aus=aus, arch="megraphau", backbone=a.arch, pretrained=None,
                         input_size=a.size, graph_stage=stage, graph_k=4)
        loss = build_loss(mc)
        models[f"hiva ME-GraphAU stage {stage}"] = (build_model(mc, dev, False), loss, None)
        if a.theirs:
            net = their_model(a.theirs, stage, a.arch, n, dev)
            models[f"their ME-GraphAU stage {stage}"] = (net, loss, None)
    hmc = ModelConfig(aus=aus, backbone=a.arch, pretrained=None, input_size=a.size,
                      text_mode="random")
    text = (torch.nn.functional.normalize(torch.randn(n, 8, hmc.text_width), dim=-1),
            torch.ones(n, 8, dtype=torch.bool))
    models["hiva HiVA"] = (build_model(hmc, dev, False), build_loss(hmc), text)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=5e-4)
            for k, (m, _, _) in models.items()}

    def step(key: str) -> float:
        model, loss_fn, txt = models[key]
        model.train()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(x, *txt) if txt is not None else model(x)
        loss, _ = loss_fn(wrap(out), y, mask)
        loss.backward()
        opts[key].step()
        opts[key].zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for key in models:  # warm-up: allocator, kernel choice
        step(key)
    best = {k: float("inf") for k in models}
    for _ in range(a.iters):
        for key in models:
            best[key] = min(best[key], step(key))
    where = torch.cuda.get_device_name(dev) if cuda else f"cpu, {torch.get_num_threads()} threads"
    print(f"train step (forward + loss + backward + AdamW), {a.arch}, batch {a.batch}, "
          f"{a.size}x{a.size}, {n} AUs, fp32, best of {a.iters} interleaved; {where}; "
          f"torch {torch.__version__}")
    with open("/proc/loadavg") as f:
        print(f"loadavg: {f.read().strip()}")
    print(f"{'model':30}{'params':>12}{'step s':>9}{'img/s':>9}")
    for key, (model, _, _) in models.items():
        p = sum(q.numel() for q in model.parameters())
        print(f"{key:30}{p:>12,}{best[key]:>9.3f}{a.batch / best[key]:>9.1f}")
    for stage in (1, 2):
        ours, theirs = f"hiva ME-GraphAU stage {stage}", f"their ME-GraphAU stage {stage}"
        if theirs in best:
            print(f"stage {stage}: hiva / theirs images/s = {best[theirs] / best[ours]:.2f}x "
                  "(goal >= 1.0)")
    print(f"HiVA / ME-GraphAU stage 1 images/s = "
          f"{best['hiva ME-GraphAU stage 1'] / best['hiva HiVA']:.2f}x, stage 2 "
          f"{best['hiva ME-GraphAU stage 2'] / best['hiva HiVA']:.2f}x")


if __name__ == "__main__":
    main()
