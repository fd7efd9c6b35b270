"""``hiva train``, ``hiva evaluate``, ``hiva report``: parse flags, build the config, call the
library (hiva.train.trainer / hiva.train.report)."""

from __future__ import annotations

from pathlib import Path

import typer

from hiva.config import SET_HELP, check_config, load_config
from hiva.errors import HivaError
from hiva.runs import SWEEP_PLAN, weights_rule
from hiva.train.config import TrainConfig


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("report")(report)


def _folds(spec: str | None) -> tuple[int, ...] | None:
    if spec is None:
        return None

    try:
        return tuple(int(x) for x in spec.split(",") if x.strip())
    except ValueError:
        raise HivaError(f"--folds {spec!r}: pass fold numbers like 1,2,3") from None


def train(
    data: str | None = typer.Option(None, "--data", help="Manifest .parquet, bp4d:DIR or "
                                    "disfa:DIR."),
    text_bank: str | None = typer.Option(None, "--text-bank", help="Folder of `hiva embed`."),
    out: str | None = typer.Option(None, "--out", help="Run folder to write."),
    config: Path | None = typer.Option(None, "--config", help="YAML TrainConfig (e.g. "
                                       "configs/ablations/*.yaml)."),
    folds: str | None = typer.Option(None, "--folds", help="Held-out folds to run, e.g. 1,2,3 "
                                     "(default all)."),
    num_folds: int | None = typer.Option(None, "--num-folds", help="Subject-exclusive folds; 1 "
                                         "= one train/test split."),
    fold_scheme: str | None = typer.Option(
        None, "--fold-scheme", help="auto (the manifest's fold column, else bp4d/disfa by "
        "subject ids, else kfold) | manifest | bp4d | disfa | kfold"),
    aus: str | None = typer.Option(None, "--aus", help="AUs to learn (default: the data's)."),
    backbone: str | None = typer.Option(None, "--backbone", help="lite0, resnet18, resnet50, "
                                        "swin_tiny, swin_base."),
    pretrained: str | None = typer.Option(None, "--pretrained", help="shipped | hub | FILE | "
                                          "none."),
    input_size: int | None = typer.Option(None, "--input-size", help="Crop size (224)."),
    text_mode: str | None = typer.Option(None, "--text-mode", help="corpus | names | learned "
                                         "| shuffled | random (see hiva.model.config)."),
    zero_shot_aus: str | None = typer.Option(
        None, "--zero-shot-aus", help="AUs whose labels are withheld from training and epoch "
        "selection (e.g. 2): detected from their descriptions alone, scored on the test fold."),
    epochs: int | None = typer.Option(None, "--epochs"),
    max_steps: int | None = typer.Option(None, "--max-steps-per-epoch"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Per process."),
    grad_accum: int | None = typer.Option(None, "--grad-accum"),
    lr: float | None = typer.Option(None, "--lr"),
    label_fraction: float | None = typer.Option(
        None, "--label-fraction", help="Labelled share of the training set (e.g. 0.1), drawn by "
        "subject (--set label_by=segment: a contiguous run per sequence); --set schedule=steps "
        "keeps the full set's optimizer steps."),
    val_fraction: float | None = typer.Option(None, "--val-fraction", help="Share of training "
                                              "subjects held out to pick the epoch."),
    seed: int | None = typer.Option(None, "--seed"),
    amp: str | None = typer.Option(None, "--amp", help="auto | bf16 | fp16 | off"),
    compile_: bool | None = typer.Option(None, "--compile/--no-compile"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda"),
    num_workers: int | None = typer.Option(None, "--num-workers"),
    resume: str | None = typer.Option(None, "--resume", help="latest: continue the run in --out."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress"),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Train HiVA per fold (train on the others, pick the epoch on validation subjects, test on
    the held-out fold) and print per-AU F1 against the all-positive baseline."""
    from hiva.train.trainer import run

    model = {k: v for k, v in (("backbone", backbone), ("pretrained", pretrained),
                               ("input_size", input_size), ("text_mode", text_mode))
             if v is not None}
    ks = _folds(folds)
    cfg = load_config(
        TrainConfig, config, sets, data=data, text_bank=text_bank, out=out, model=model, folds=ks,
        num_folds=num_folds, fold_scheme=fold_scheme, aus=aus, epochs=epochs,
        max_steps_per_epoch=max_steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
        label_fraction=label_fraction, val_fraction=val_fraction, seed=seed, amp=amp,
        compile=compile_, device=device, num_workers=num_workers, resume=resume,
        progress=progress, zero_shot_aus=zero_shot_aus,
    )
    run(cfg)


def evaluate(
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="Run folder of `hiva "
                                          "train`, or an export folder (`hiva export`, `hiva "
                                          "import-checkpoint`) or a Hub id OWNER/NAME[@REVISION] "
                                          "of one, with --data (not with --zero-shot)."),
    fold: int = typer.Option(1, "--fold", help="Which fold's test subjects and weights."),
    data: str | None = typer.Option(None, "--data", help="Data (default: the run's)."),
    weights: str = typer.Option("best", "--weights", help="best | last"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    num_workers: int | None = typer.Option(None, "--num-workers"),
    device: str = typer.Option("auto", "--device"),
    zero_shot: bool = typer.Option(False, "--zero-shot", help="Score AUs from descriptions "
                                   "alone with a CLIP (--backbone clip:NAME, --text-bank from "
                                   "`hiva embed --encoder clip:NAME`), calibrated per AU on the "
                                   "validation subjects; no training."),
    backbone: str | None = typer.Option(None, "--backbone", help="With --zero-shot: "
                                        "clip:HUB_ID_OR_FOLDER."),
    text_bank: str | None = typer.Option(None, "--text-bank", help="With --zero-shot: the "
                                         "CLIP-embedded descriptions."),
    config: Path | None = typer.Option(None, "--config", help="With --zero-shot: a train "
                                       "config YAML for the protocol (folds, val_fraction, aus)."),
    out: str | None = typer.Option(None, "--out", help="Output folder: with --zero-shot, its "
                                   "results; with --checkpoint, the metrics and the "
                                   "predictions (default: the run's fold folder or the export "
                                   "folder; needed for a Hub id)."),
    sets: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Recompute a fold's test metrics from a trained run; or, with --zero-shot, score AUs
    from their descriptions alone with a CLIP."""
    if zero_shot:
        from hiva.train.zero_shot import zero_shot as zs

        if checkpoint is not None:
            raise HivaError("--zero-shot trains nothing and reads no checkpoint; drop "
                            "--checkpoint (or drop --zero-shot to evaluate the run)")
        model = {"backbone": backbone} if backbone else None
        cfg = load_config(TrainConfig, config, sets, data=data, text_bank=text_bank,
                          model=model, device=device, eval_batch_size=batch_size,
                          num_workers=num_workers)
        if not cfg.data:
            raise HivaError("--zero-shot needs --data MANIFEST (or bp4d:DIR / disfa:DIR)")
        zs(cfg, out or "runs/zero-shot")
        return
    if checkpoint is None:
        raise HivaError("--checkpoint RUN_DIR is required (the --out of `hiva train`), or "
                        "pass --zero-shot")
    if any(v is not None for v in (backbone, text_bank, config)) or sets:
        raise HivaError("--backbone, --text-bank, --config and --set go with --zero-shot; a "
                        "run's evaluation uses the run's own")
    from hiva.train.evaluate import evaluate as ev

    check_config("evaluate", [weights_rule(weights)])
    ev(checkpoint, fold, data=data, device=device, batch_size=batch_size,
       num_workers=num_workers, weights=weights, out=out)


def report(
    runs: list[Path] = typer.Argument(..., help=f"A sweep folder (with {SWEEP_PLAN}) or run "
                                      "folders to compare."),
    name: list[str] | None = typer.Option(None, "--name", help="Column name per run folder."),
    reference: str | None = typer.Option(None, "--reference", help="Group the differences are "
                                         f"against (default: the first arm in {SWEEP_PLAN}, or "
                                         "the first run folder)."),
    resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples (0: point "
                                  "estimates only, run folders)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap draws."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a Markdown table."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Forest plot PNG of the differences."),
    resample: str = typer.Option("hierarchical", "--resample", help="hierarchical: draw test "
                                 "subjects and each group's seeds (training noise counts) | "
                                 "subjects: test subjects only (the trained runs held fixed)."),
    primary: list[str] | None = typer.Option(None, "--primary", help='A contrast printed '
                                             'first, "A - B" (group or run names; repeatable; '
                                             f'over {SWEEP_PLAN}\'s).'),
    only: list[str] | None = typer.Option(None, "--only", help="Report only a sweep's groups "
                                          "matching this shell pattern (repeatable), e.g. "
                                          "'*_s1': contrasts and Holm p over those alone."),
) -> None:
    """Test F1 and ROC AUC with 95% bootstrap CIs (test subjects and seeds resampled): per arm
    of a sweep (mean over seeds and folds) and paired differences against a reference arm, with
    Holm-adjusted p; or several run folders side by side."""
    from hiva.train.report import run_report

    typer.echo(run_report(runs, name or None, reference, resamples, seed, markdown, json_out,
                          plot, resample, primary, only))
