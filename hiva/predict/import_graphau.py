"""``hiva import-checkpoint``: ME-GraphAU's and OpenGraphAU's released ``.pth`` files as hiva export
folders, so ``hiva predict``, ``evaluate``, ``explain``, ``export`` and ``hiva.Detector`` run them.

Their checkpoints are ``{"state_dict": ...}`` (keys often prefixed ``module.`` by DataParallel),
read with ``torch.load(weights_only=True)``. Every key is mapped, strictly: a key of theirs that
maps nowhere, or a tensor of ours that nothing fills, is one error naming them.

Key layout of their code → ``hiva.model.megraphau.MEGraphAU``:

    backbone.*                              → backbone.model.* (timm; Swin through timm's own
                                              converter of the original Swin layout)
    global_linear.{fc,bn}.*                 → global_linear.{fc,bn}.*
    head.[main_]class_linears.{i}.fc.*      → au_blocks.weight[i], au_blocks.bias[i]
    head.[main_]class_linears.{i}.bn.*      → au_blocks.bn.*[i·c:(i+1)·c]
    head.[main_]sc / head.sub_sc            → sc / side_sc
    head.gnn.{U,V,bnv}.*                    → gnn.* (stage 1)
    head.edge_extractor.*                   → edge_extractor.* (stage 2)
    head.gnn.{U,V,A,B,E}{1,2}, bn{v,e}{1,2} → gnn.{0,1}.{U,…,bnv,bne} (ME-GraphAU stage 2)
    head.gnn.graph_layers.{i}.*             → gnn.{i}.* (OpenGraphAU stage 2)
    head.edge_fc.*                          → edge_fc.* (ME-GraphAU stage 2)
"""

from __future__ import annotations

import re
from pathlib import Path

from hiva import __version__
from hiva.config import config_dict
from hiva.errors import HivaError, some
from hiva.facs import AU_SETS, AUS, parse_aus
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model, check_fit, save_weights
from hiva.predict.export import card_text
from hiva.runs import EXPORT_LICENCE, EXPORT_WEIGHTS, export_dir, write_export
from hiva.train.config import TrainConfig

SOURCES = ("megraphau", "opengraphau")
# Their backbone names → timm's.
ARCHS = {
    "resnet18": "resnet18", "resnet50": "resnet50", "resnet101": "resnet101",
    "swin_transformer_tiny": "swin_tiny_patch4_window7_224",
    "swin_transformer_small": "swin_small_patch4_window7_224",
    "swin_transformer_base": "swin_base_patch4_window7_224",
}
ARCH_ALIASES = {"swin_tiny": "swin_transformer_tiny", "swin_small": "swin_transformer_small",
                "swin_base": "swin_transformer_base"}
# The AUs of OpenGraphAU's left/right outputs: its sub_list [0, 1, 2, 4, 7, 8, 11] of the 27 main
# AUs. Its code lists the sixth pair as L12/R12, but names it "Left/Right nasolabial deepener"
# and reads AU11's node for it (index 8): it is AU11 here (columns AU11L/AU11R).
OPENGRAPHAU_SIDE = (1, 2, 4, 6, 10, 11, 14)
# Their preprocessing (utils.image_test): resize the aligned face to 256, centre crop 224,
# ImageNet mean/std; 0.5 is the threshold their evaluation and demo use.
RESIZE, CROP = 256, 224


def read_their_checkpoint(path: str | Path) -> dict:
    """Tensors of a ME-GraphAU/OpenGraphAU ``.pth`` (``state_dict`` inside, ``module.`` off)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise HivaError(f"checkpoint {p} does not exist; download it from the links in the "
                        "README (ME-GraphAU / OpenGraphAU) and pass the .pth file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — a refused unpickle is the user's file
        raise HivaError(f"cannot read {p} as a tensor-only checkpoint ({type(e).__name__}); "
                        "pass the .pth file of their release as downloaded") from None
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not sd:
        raise HivaError(f"{p} holds no state_dict; pass a ME-GraphAU/OpenGraphAU checkpoint")
    return {k.removeprefix("module."): v for k, v in sd.items() if hasattr(v, "shape")}


def model_config_for(sd: dict, source: str, arch: str, aus=None, graph_k: int | None = None,
                     metric: str = "dots"):
    """The ``ModelConfig`` of a checkpoint: AU count from ``head.sc``, stage from the presence
    of edge-feature keys, ``aus`` given or the dataset's (12: BP4D, 8: DISFA, 27: OpenGraphAU)."""
    if source not in SOURCES:
        raise HivaError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    arch = ARCH_ALIASES.get(arch, arch)
    if arch not in ARCHS:
        raise HivaError(f"--arch {arch!r} is not one of theirs: {', '.join(ARCHS)} (the name "
                        "their checkpoint was trained with)")
    sc = "head.main_sc" if source == "opengraphau" else "head.sc"
    if sc not in sd:
        other = "opengraphau" if source == "megraphau" else "megraphau"
        raise HivaError(f"the checkpoint has no {sc}: it is not a {source} checkpoint "
                        f"(try `hiva import-checkpoint {other}`)")
    n = int(sd[sc].shape[0])
    stage = 2 if any(k.startswith("head.edge_extractor.") for k in sd) else 1
    if aus is None:
        by_n = {12: AU_SETS["bp4d"], 8: AU_SETS["disfa"], 27: AU_SETS["opengraphau"]}
        if n not in by_n:
            raise HivaError(f"the checkpoint has {n} AUs; pass --aus with its {n} AUs in order")
        aus = by_n[n]
    aus = parse_aus(aus)
    if len(aus) != n:
        raise HivaError(f"--aus lists {len(aus)} AUs, the checkpoint has {n}; pass its AUs in "
                        "order")
    side = OPENGRAPHAU_SIDE if source == "opengraphau" else ()
    if side and int(sd.get("head.sub_sc", sd[sc][:0]).shape[0]) != 2 * len(side):
        raise HivaError("the checkpoint's head.sub_sc does not hold OpenGraphAU's 14 left/right "
                        "outputs; is it an OpenGraphAU checkpoint?")
    k = graph_k if graph_k is not None else (4 if n != 8 else 3)  # their configs' neighbor_num
    return ModelConfig(aus=aus, arch="megraphau", backbone=ARCHS[arch], pretrained=None,
                       input_size=CROP, graph_stage=stage, graph_k=min(k, n),
                       graph_metric=metric, side_aus=side,
                       graph_variant="opengraphau" if source == "opengraphau" else "me-graphau")


def convert(sd: dict, model, source: str) -> dict:
    """Their state dict → ``model``'s (a ``MEGraphAU``), every tensor accounted for."""
    import torch

    own = model.state_dict()
    out: dict = {}
    used: set[str] = set()
    n, c = model.au_blocks.weight.shape[:2]

    def take(src_key: str, dst_key: str) -> None:
        out[dst_key] = sd[src_key]
        used.add(src_key)

    # backbone
    bb = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    used.update(f"backbone.{k}" for k in bb)
    if "swin" in model.cfg.backbone:
        from timm.models.swin_transformer import checkpoint_filter_fn

        bb = checkpoint_filter_fn(bb, model.backbone.model)
    out.update({f"backbone.model.{k}": v for k, v in bb.items()})
    for k in ("fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
              "bn.running_var", "bn.num_batches_tracked"):
        if f"global_linear.{k}" in sd:
            take(f"global_linear.{k}", f"global_linear.{k}")
    # per-AU blocks → one batched block
    lin = "head.main_class_linears" if source == "opengraphau" else "head.class_linears"
    try:
        w = [sd[f"{lin}.{i}.fc.weight"] for i in range(n)]
        b = [sd[f"{lin}.{i}.fc.bias"] for i in range(n)]
        out["au_blocks.weight"], out["au_blocks.bias"] = torch.stack(w), torch.stack(b)
        for part in ("weight", "bias", "running_mean", "running_var"):
            out[f"au_blocks.bn.{part}"] = torch.cat([sd[f"{lin}.{i}.bn.{part}"]
                                                     for i in range(n)])
        steps = [sd.get(f"{lin}.{i}.bn.num_batches_tracked") for i in range(n)]
        out["au_blocks.bn.num_batches_tracked"] = (max(steps) if all(s is not None for s in steps)
                                                   else torch.tensor(0))
    except KeyError as e:
        raise HivaError(f"the checkpoint lacks {e.args[0]} of its per-AU blocks; it is not a "
                        f"{source} checkpoint for {n} AUs") from None
    used.update(k for k in sd if k.startswith(f"{lin}."))
    take("head.main_sc" if source == "opengraphau" else "head.sc", "sc")
    if "head.sub_sc" in sd:
        take("head.sub_sc", "side_sc")
    stage2_me = re.compile(r"head\.gnn\.([UVABE]|bnv|bne)([12])\.(.+)")
    stage2_open = re.compile(r"head\.gnn\.graph_layers\.(\d+)\.(.+)")
    for k in sd:
        if k in used:
            continue
        if k.startswith("head.edge_extractor."):
            take(k, k.removeprefix("head."))
        elif k.startswith("head.edge_fc."):
            take(k, k.removeprefix("head."))
        elif m := stage2_me.fullmatch(k):
            take(k, f"gnn.{int(m.group(2)) - 1}.{m.group(1)}.{m.group(3)}")
        elif m := stage2_open.fullmatch(k):
            take(k, f"gnn.{m.group(1)}.{m.group(2)}")
        elif k.startswith("head.gnn."):
            take(k, k.removeprefix("head."))
    extra = sorted(set(sd) - used)
    check_fit(own, out, f"the checkpoint does not fit {source} {model.cfg.backbone} stage "
              f"{model.cfg.graph_stage}", "check --arch and that the file is theirs",
              labels=("model tensors nothing fills:", "mapped keys the model lacks:"),
              more=(f"keys of the checkpoint that map nowhere: {some(extra)}",) if extra else ())
    return {k: out[k].to(own[k].dtype) for k in own}


def import_checkpoint(source: str, path: str | Path, arch: str, to: str | Path, aus=None,
                      graph_k: int | None = None, metric: str = "dots",
                      align: bool = True) -> dict:
    """Write the export folder ``to`` for their checkpoint ``path``; returns its config.json."""
    to = Path(to)
    export_dir(to, "--out")
    sd = read_their_checkpoint(path)
    mc = model_config_for(sd, source, arch, aus, graph_k, metric)
    model = build_model(mc, "cpu", False)
    model.load_state_dict(convert(sd, model, source), strict=True)
    export_dir(to, "--out", claim=True)
    cfg = TrainConfig(model=mc, resize=RESIZE, data="", amp="off")
    meta = {"aus": list(mc.aus), "model_config": config_dict(mc), "text_fingerprint": "",
            "text_encoder": "", "imported_from": f"{source}:{Path(path).name}"}
    save_weights(model, to / EXPORT_WEIGHTS, meta)
    mean, std = model.normalisation()
    names = [AUS[a].name for a in mc.aus]
    names += [f"{'Left' if s == 'L' else 'Right'} {AUS[a].name}"
              for a in mc.side_aus for s in "LR"]
    info = {
        "hiva_version": __version__,
        "aus": list(mc.aus), "au_names": names,
        "columns": [f"{c}_p" for c in mc.outputs],
        "model_config": meta["model_config"],
        "thresholds": [0.5] * len(mc.outputs), "threshold_source": "0.5 (their evaluation's)",
        "align": align, "align_source": "trained on aligned face crops (their preprocessing)",
        "input_size": CROP, "resize": RESIZE, "mean": list(mean), "std": list(std),
        "text_mode": None, "text_fingerprint": None, "text_encoder": None,
        "eval_text_per_au": None, "fold": None,
        "source": {"imported_from": source, "file": str(Path(path).resolve()), "arch": arch,
                   "data": {"megraphau": "BP4D or DISFA (research-only licences)",
                            "opengraphau": "OpenGraphAU's hybrid of six AU datasets "
                                           "(research-only licences)"}[source]},
        "test": {},
    }
    return write_export(to, info, config_dict(cfg), list(zip(mc.outputs, names)),
                        import_card(info, source, arch), import_terms(info))


def import_card(info: dict, source: str, arch: str) -> str:
    """README.md of an imported checkpoint: Hub metadata through ``ModelCardData`` (licence: the
    training data's research-only terms, in LICENSE.md) and what the weights are."""
    from huggingface_hub import ModelCardData

    title = {"megraphau": "ME-GraphAU", "opengraphau": "OpenGraphAU"}[source]
    stage = info["model_config"]["graph_stage"]
    data = ModelCardData(
        library_name="hiva", pipeline_tag="image-classification", license="other",
        license_name=_LICENCE[source], license_link=EXPORT_LICENCE,
        tags=["facial-action-units", "facs", "hiva", "me-graphau"],
    )
    return card_text(data, [
        f"# {title} {arch}, stage {stage}, imported into hiva", "",
        f"Weights released by the authors of ME-GraphAU (Luo et al., IJCAI 2022; code MIT-licensed,"
        f" github.com/CVI-SZU/ME-GraphAU), mapped key by key onto hiva's own implementation by "
        f"`hiva import-checkpoint {source}`. The weights were trained on "
        f"{info['source']['data']}: use them for research only.", "",
        "Preprocessing: an aligned face crop resized to 256 px, centre crop 224, ImageNet "
        "normalisation; hiva aligns with MediaPipe, not their aligner. Outputs: "
        f"{', '.join(info['columns'][:4])} … ({len(info['columns'])} columns), threshold 0.5.", "",
        "## Licence", "", import_terms(info), "",
    ])


# The licence names of imported weights (``license: other``): their training data's terms.
_LICENCE = {"megraphau": "bp4d-disfa-research-only", "opengraphau": "au-datasets-research-only"}


def import_terms(info: dict) -> str:
    """The terms imported weights carry (Markdown, one paragraph)."""
    return (f"These weights were trained by others on {info['source']['data']}. Those datasets "
            "are licensed for research use only by their owners (among them BP4D by Binghamton "
            "University and DISFA by the University of Denver), and weights learned from them "
            "inherit those terms: use them for research only, and only where you may use the "
            "data yourself. ME-GraphAU's MIT licence covers its code, not these weights.")
