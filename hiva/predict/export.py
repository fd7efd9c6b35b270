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
    README.md             a model card

The export is loaded once before it is written, so only a checkpoint that loads is exported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hiva.errors import HivaError


def _copy_bank(src: str, dst: Path) -> None:
    from hiva.textbank import bundle_dirs

    root = Path(src)
    for d in bundle_dirs(root):
        rel = d.relative_to(root) if d != root else Path(".")
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            if f.is_file():
                shutil.copyfile(f, dst / rel / f.name)


def _metrics(run_dir: Path, k: int | None) -> dict:
    f = run_dir / f"fold{k}" / "metrics.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def model_card(info: dict, metrics: dict, repo: str | None) -> str:
    from hiva import CITATION
    from hiva.facs import AUS, au_column

    aus = info["aus"]
    graph = info["model_config"].get("arch") == "megraphau"
    test = metrics.get("test") or {}
    synthetic = "synthetic" in info.get("align_source", "")
    where = "DIR" if repo else "THIS_FOLDER"
    lines = [
        "---",
        "library_name: hiva",
        "pipeline_tag: image-classification",
        "tags:", "- facial-action-units", "- facs", "- hiva", "- vision-language",
        "---", "",
        f"# {'ME-GraphAU' if graph else 'HiVA'} facial Action Unit detector "
        f"({info['model_config']['backbone']}, {len(aus)} AUs)", "",
        ("Trained with hiva's implementation of ME-GraphAU (Luo et al., IJCAI 2022), stage "
         f"{info['model_config'].get('graph_stage')}, the AU literature's reference model; it "
         "reads no text." if graph else
         "Trained with hiva, an implementation of *Hierarchical "
         "Vision-Language Interaction for Facial Action Unit Detection* (Li et al., arXiv "
         "2602.14425): LLM-written AU descriptions as semantic priors, an AU-aware dynamic graph, "
         "DDCA and CDCA cross-attention. The layer-level design is hiva's reading of the paper's "
         "abstract, not the authors' code."), "",
    ]
    if synthetic:
        lines += ["> **Trained on hiva's synthetic cartoon faces.** It demonstrates the pipeline; "
                  "it says nothing about real faces and should not be used on them.", ""]
    lines += [
        "## Use", "", "```bash",
        f"hiva predict video.mp4 frames/ --checkpoint {where} --out au.csv",
        "```", "", "```python", "import hiva", "",
        f"det = hiva.Detector({where!r})",
        "df = det.detect([\"face.jpg\", \"clip.mp4\"])  # one row per frame", "```", "",
    ]
    if repo:
        lines += [f"Download it first (`hf download {repo} --local-dir DIR`), then pass DIR.", ""]
    lines += [
        "## Outputs", "",
        "Per frame: `AUxx_p` probability and `AUxx_c` (1 when `AUxx_p` ≥ the AU's threshold). "
        f"Thresholds: {info['threshold_source']}. Preprocessing: "
        f"{'MediaPipe face detection + eye alignment to 256 px, ' if info['align'] else ''}"
        f"resize {info['resize']}, centre crop {info['input_size']}, normalisation mean "
        f"{info['mean']} std {info['std']}.", "",
        "| AU | name | threshold | test F1 |", "|---|---|---|---|",
    ]
    f1 = test.get("f1") or [None] * len(aus)
    for a, th, f in zip(aus, info["thresholds"], f1):
        name = AUS[a].name if a in AUS else ""
        lines.append(f"| {au_column(a)} | {name} | {th:.2f} | "
                     f"{'' if f is None else f'{100 * f:.1f}'} |")
    if test:
        lines += ["", f"Mean test F1 at threshold 0.5: {100 * test.get('mean_f1', 0):.1f} "
                  f"(all-positive baseline {100 * test.get('mean_baseline_f1', 0):.1f}) on "
                  f"{test.get('n', '?')} held-out frames of fold {info['fold']}."]
    lines += ["", "## Training", "",
              f"Data: `{info['source'].get('data', '')}`; text: {info['text_mode']} "
              f"(encoder fingerprint {info.get('text_encoder') or 'none'}, bank "
              f"{info.get('text_fingerprint') or 'none'}); epoch {info['source'].get('epoch')}. "
              "`train_config.yaml` holds every setting.", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)


def export(run_dir, to, fold: int | None = None, push: str | None = None,
           text_bank: str | None = None, weights: str = "best", private: bool = False) -> dict:
    """Write the export folder ``to`` for fold ``fold`` of ``run_dir``; push it when ``push`` is
    OWNER/NAME. Returns the written ``config.json`` as a dict."""
    import yaml

    from hiva import __version__
    from hiva.config import config_dict
    from hiva.facs import AUS, au_column
    from hiva.predict.loader import EXPORT_FORMAT, EXPORT_VERSION, is_export, load

    run_dir, to = Path(run_dir), Path(to)
    if push is not None and "/" not in push:
        raise HivaError(f"--push {push} must be OWNER/NAME, e.g. my-lab/hiva-bp4d")
    if is_export(run_dir):
        raise HivaError(f"{run_dir} is already an export; copy the folder, or push it with "
                        f"`hiva export RUN_DIR --to {run_dir} --push OWNER/NAME` from its run")
    from hiva.runtime import require_dir_path, writable_dir

    require_dir_path(to, "--to")
    if to.exists() and any(to.iterdir()) and not is_export(to):
        raise HivaError(f"--to {to} exists and is not an earlier export; pass a new or empty "
                        "folder")
    ld = load(run_dir, fold=fold, device="cpu", text_bank=text_bank, weights=weights)
    writable_dir(to, "--to")
    shutil.copyfile(ld.weights, to / "model.safetensors")
    if (to / "text_bank").exists():
        shutil.rmtree(to / "text_bank")
    if ld.text_bank:
        _copy_bank(ld.text_bank, to / "text_bank")
    cfg = config_dict(ld.cfg)
    cfg["text_bank"] = "text_bank" if ld.text_bank else None
    (to / "train_config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    mean, std = ld.model.normalisation()
    metrics = _metrics(run_dir, ld.fold)
    info = {
        "format": EXPORT_FORMAT, "format_version": EXPORT_VERSION, "hiva_version": __version__,
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
                   "weights": f"fold{ld.fold}/{ld.weights.name}", "epoch": ld.meta.get("epoch"),
                   "step": ld.meta.get("step")},
        "test": {k: (metrics.get("test") or {}).get(k) for k in ("mean_f1", "f1", "n")},
    }
    (to / "config.json").write_text(json.dumps(info, indent=1))
    (to / "aus.txt").write_text("".join(f"{au_column(a)}\t{n}\n"
                                        for a, n in zip(ld.aus, info["au_names"])))
    (to / "README.md").write_text(model_card(info, metrics, push))
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
