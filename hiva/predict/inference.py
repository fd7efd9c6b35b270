"""A loaded model made cheaper to run for prediction without changing what it computes:
``fold_batchnorm`` folds each eval-mode BatchNorm into the convolution before it (one pass over
the activations fewer per convolution), and ``prepare`` also puts the model in the run's memory
format (channels_last, as ``hiva train`` and ``hiva evaluate`` run it: on a CPU with bf16 it
halves EfficientNet-Lite0's time; benchmarks/bench_predict.py).

In float32 the prepared model's probabilities equal the plain one's to rounding (~1e-7); under
bf16 autocast both are bf16 computations in a different order, as far apart as either is from
float32 (tests/predict/test_predict_fast.py).
"""

from __future__ import annotations


def _after_fold(bn):
    """What replaces ``bn`` once folded: None when its kind is not one we know to be a plain
    BatchNorm (then it is left alone)."""
    from torch import nn

    from_timm = type(bn).__module__.startswith("timm.")
    if type(bn) is nn.BatchNorm2d:
        out = nn.Identity()
    elif from_timm and type(bn).__name__ == "BatchNormAct2d":  # BatchNorm, dropout, activation
        out = nn.Sequential(bn.drop, bn.act)
    else:
        return None
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return None  # batch statistics: nothing fixed to fold
    return out


def _replace(root, name: str, new) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_batchnorm(module) -> int:
    """Fold every eval-mode BatchNorm2d whose input is a Conv2d's output, used by nothing else,
    into that convolution (``torch.nn.utils.fusion.fuse_conv_bn_eval``), in place; the BatchNorm
    becomes its activation (timm's ``BatchNormAct2d``) or an identity. The pairs are read off a
    ``torch.fx`` trace, so a convolution whose output also feeds anything else is left alone.
    Returns how many were folded; a module fx cannot trace is left as it is (same outputs,
    slower)."""
    import torch.fx
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if module.training or not any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        return 0

    class Leaves(torch.fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return (isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
                    or super().is_leaf_module(m, qualified_name))

    try:
        graph = Leaves().trace(module)
    except Exception:  # noqa: BLE001 — fx cannot trace every model; it keeps its BatchNorm
        return 0
    mods = dict(module.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(mods[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if not (isinstance(src, torch.fx.Node) and src.op == "call_module"
                and isinstance(mods[src.target], nn.Conv2d) and len(src.users) == 1
                and calls[src.target] == 1 and calls[node.target] == 1):
            continue  # not conv → bn alone, or a module called twice (shared weights)
        rest = _after_fold(mods[node.target])
        if rest is not None:
            pairs.append((src.target, node.target, rest))
    for conv, bn, rest in pairs:
        _replace(module, conv, fuse_conv_bn_eval(mods[conv], mods[bn]))
        _replace(module, bn, rest)
    return len(pairs)


def prepare(ld) -> int:
    """``ld.model`` (a ``hiva.predict.loader.Loaded``'s) ready for prediction, in place: its
    backbone's BatchNorms folded, then the whole model in ``ld.channels_last``'s memory format.
    Returns how many BatchNorms were folded."""
    import torch

    backbone = getattr(ld.model, "backbone", None)
    folded = fold_batchnorm(backbone) if backbone is not None else 0
    if ld.channels_last:
        ld.model.to(memory_format=torch.channels_last)
    return folded
