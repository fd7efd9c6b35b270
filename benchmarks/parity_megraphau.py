"""Parity of hiva's ME-GraphAU / OpenGraphAU with the authors' code: their model with random
weights (BatchNorm statistics and affine parameters randomised too), saved as their trainers save
(``{"state_dict": {"module." + key}}``), imported with ``hiva import-checkpoint``'s code, and both
run on the same fixed inputs in fp32: eval mode, and train mode (batch statistics) for ResNets
(Swin's stochastic depth makes its train mode random). Goal: max |difference| <= 1e-5 on the
outputs; stage 2's edge logits are reported relative to their largest value.

    .venv/bin/python benchmarks/parity_megraphau.py --theirs PATH/TO/ME-GraphAU \
        [--sources megraphau opengraphau] [--archs resnet18 resnet50 ...] [--stages 1 2]

``--theirs``: a checkout of github.com/CVI-SZU/ME-GraphAU (MIT), used where it is. Their
ImageNet loaders are bypassed (random init), and their stage-2 graph network's CPU branch is
added at run time (see bench_megraphau.py). Print-only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # bench_megraphau; tests.model.graphau_layout

ARCHS = ("resnet18", "resnet50", "resnet101", "swin_transformer_tiny", "swin_transformer_small",
         "swin_transformer_base")


def check(root: str, source: str, stage: int, arch: str, batch: int = 4) -> dict:
    import torch
    from bench_megraphau import their_model

    from hiva.model.factory import build_model
    from hiva.predict.import_graphau import convert, model_config_for, read_their_checkpoint
    from tests.model.graphau_layout import randomise_norms

    n = 12 if source == "megraphau" else 27
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    net = their_model(root, stage, arch, n, torch.device("cpu"), source)
    randomise_norms(net, g)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "theirs.pth")
        torch.save({"epoch": 3, "state_dict": {"module." + k: v
                                               for k, v in net.state_dict().items()}}, p)
        sd = read_their_checkpoint(p)
    ours = build_model(model_config_for(sd, source, arch), "cpu", False)
    ours.load_state_dict(convert(sd, ours, source), strict=True)
    x = torch.randn(batch, 3, 224, 224, generator=g)
    res = {}
    for mode in ["eval"] + (["train"] if "resnet" in arch else []):
        net.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            t, o = net(x), ours(x)
        main = t[0] if isinstance(t, tuple) else t
        side = 0.0
        if source == "opengraphau":
            main, t_side = main[:, :27], main[:, 27:]
            side = (o.side_probs - t_side).abs().max().item()
        edge = 0.0
        if isinstance(t, tuple):
            edge = ((o.edge_logits - t[1]).abs().max() / t[1].abs().max()).item()
        res[mode] = ((o.probs - main).abs().max().item(), side, edge)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--theirs", required=True, help="checkout of CVI-SZU/ME-GraphAU")
    ap.add_argument("--sources", nargs="+", default=["megraphau", "opengraphau"])
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--stages", nargs="+", type=int, default=[1, 2])
    a = ap.parse_args()
    worst = 0.0
    print(f"{'source':12} {'stage':>5} {'arch':24} {'mode':6} {'max|Δ out|':>11} "
          f"{'max|Δ side|':>12} {'edge logits rel':>16}")
    for source in a.sources:
        for stage in a.stages:
            for arch in a.archs:
                for mode, (d, side, edge) in check(a.theirs, source, stage, arch).items():
                    worst = max(worst, d, side)
                    print(f"{source:12} {stage:>5} {arch:24} {mode:6} {d:>11.2e} {side:>12.2e} "
                          f"{edge:>16.2e}", flush=True)
    print(f"worst output difference {worst:.2e}: {'PASS' if worst <= 1e-5 else 'FAIL'} "
          "(goal <= 1e-5)")


if __name__ == "__main__":
    main()
