"""``hiva model summary``: flags → ModelConfig → parameter counts per part and FLOPs per image."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from hiva.config import SET_HELP, load_config
from hiva.model.archs import get_arch
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model

model_app = typer.Typer(help="Inspect the HiVA model.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


def summarise(cfg, text_tokens: int = 8) -> dict:
    """Parameter counts per part and forward FLOPs for one image at ``cfg.input_size``.

    Weights are not loaded (``pretrained`` is ignored): counts and FLOPs do not depend on them.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(dataclasses.replace(cfg, pretrained=None), "cpu", False).eval()
    images = torch.zeros(1, 3, cfg.input_size, cfg.input_size)
    text = torch.randn(cfg.num_aus, text_tokens, cfg.text_width)
    counter = FlopCounterMode(display=False)
    # MHA's fused inference path is one opaque kernel the counter cannot see; count the
    # decomposed ops instead (the same arithmetic).
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), counter:
            model(images, text)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    total = counter.get_total_flops()
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    by_part = {}
    for name, _ in model.named_children():
        key = f"{type(model).__name__}.{name}"
        if key in counts:
            by_part[name] = counts[key]
        else:  # a ModuleList is never called itself: add up its layers
            by_part[name] = sum(
                v for k, v in counts.items() if k.startswith(key + ".") and k.count(".") == 2
            )
    return {
        "config": cfg,
        "params": model.param_counts(),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "flops": total,
        "flops_by_part": by_part,
        "text_tokens": text_tokens,
    }


@model_app.command("summary")
def summary(
    config: Path | None = typer.Option(None, "--config", help="YAML file of ModelConfig."),
    aus: str | None = typer.Option(None, "--aus", help="bp4d | disfa | all | 1,2,4,12"),
    backbone: str | None = typer.Option(
        None, "--backbone",
        help="tf_efficientnet_lite0 | resnet18 | resnet50 | swin_tiny | swin_base",
    ),
    d_model: int | None = typer.Option(None, "--d-model"),
    num_heads: int | None = typer.Option(None, "--num-heads"),
    text_dim: int | None = typer.Option(None, "--text-dim"),
    depth: int | None = typer.Option(None, "--depth", help="DDCA→CDCA stacks."),
    graph: bool | None = typer.Option(None, "--graph/--no-graph"),
    graph_layers: int | None = typer.Option(None, "--graph-layers"),
    language_edges: bool | None = typer.Option(None, "--language-edges/--no-language-edges"),
    ddca: bool | None = typer.Option(None, "--ddca/--no-ddca"),
    cdca: bool | None = typer.Option(None, "--cdca/--no-cdca"),
    head: str | None = typer.Option(None, "--head", help="match | linear | both"),
    text_mode: str | None = typer.Option(None, "--text-mode",
                                         help="corpus | names | learned | shuffled | random"),
    input_size: int | None = typer.Option(None, "--input-size"),
    text_tokens: int = typer.Option(8, "--text-tokens", help="Descriptions per AU (M)."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Parameter counts per part and FLOPs for one image."""
    overrides = dict(
        aus=aus, backbone=backbone, d_model=d_model, num_heads=num_heads, text_dim=text_dim,
        depth=depth, graph=graph, graph_layers=graph_layers, language_edges=language_edges,
        ddca=ddca, cdca=cdca, head=head, text_mode=text_mode, input_size=input_size,
        pretrained="none",  # counts and FLOPs do not depend on weights; skip loading them
    )
    cfg = load_config(ModelConfig, config, sets, **overrides)
    s = summarise(cfg, text_tokens)
    p = s["params"]
    size = cfg.input_size
    aus_line = f"backbone={cfg.backbone}  AUs={len(cfg.aus)} ({','.join(map(str, cfg.aus))})"
    arch = get_arch(cfg.arch)
    extra = f"  intensity={cfg.intensity}" if cfg.has_intensity else ""
    typer.echo(f"{arch.title}  {aus_line}  {arch.describe(cfg)}{extra}")
    typer.echo(f"{'part':<15}{'params':>14}{'share':>8}{'GFLOPs':>10}")
    for name, n in p.items():
        if name == "total":
            continue
        fl = s["flops_by_part"].get(name, 0) / 1e9
        typer.echo(f"{name:<15}{n:>14,}{n / p['total']:>8.1%}{fl:>10.3f}")
    heads_share = 1 - p["backbone"] / p["total"]
    typer.echo(f"{'total':<15}{p['total']:>14,}{'':>8}{s['flops'] / 1e9:>10.3f}")
    text = f" with M={text_tokens} descriptions per AU" if arch.reads_text else ""
    typer.echo(
        f"FLOPs for one {size}x{size} image{text}: "
        f"{s['flops'] / 1e9:.3f} GFLOPs (multiply-add = 2); parameters outside the backbone: "
        f"{heads_share:.1%}"
    )
