"""``hiva evaluate``: recompute a fold's test metrics from a run folder's weights (``best`` or
``last``), on the run's data or another manifest, with the run's protocol; writes
``fold{k}/evaluate.json`` (with ``localisation``: per-AU energy in the region and pointing game
of the activation maps, when the manifest has landmarks) and
``fold{k}/evaluate_<weights>_predictions.parquet``. An export folder (or an export's Hub id
``OWNER/NAME[@REVISION]``, read from the local Hub cache) is scored on ``--data`` and writes
``evaluate_fold{k}.json`` beside its weights, or into ``--out`` (needed for a Hub id).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.hub import hub_model_id
from hiva.model.factory import read_checkpoint, restore
from hiva.runs import (
    evaluated_files,
    fold_label,
    is_export,
    open_checkpoint,
    resolve_checkpoint,
    run_path,
)
from hiva.runtime import (
    amp_dtype,
    init_dist,
    pick_device,
    require_dir_path,
    writable_dir,
    write_text_atomic,
)
from hiva.textbank import load_text
from hiva.train.config import TrainConfig
from hiva.train.intensity_metrics import intensity_metrics, intensity_table
from hiva.train.logs import save_predictions
from hiva.train.metrics import au_metrics, format_table, localisation_scores
from hiva.train.protocol import load_data, make_folds, resolve_aus
from hiva.train.steps import predict


@dataclass
class LoadedFold:
    """A trained fold ready to score its test frames (``load_fold``)."""

    cfg: TrainConfig
    weights: Path
    meta: dict
    model: object
    test: object  # the fold's test rows (DataFrame)
    dataset: object  # AUDataset of them through the evaluation transform
    text: object  # (N×M×D, N×M mask) the model reads, or None
    dist: object
    device: object
    export: bool = False  # the weights are an export's (one file per scored fold)


def load_fold(run_dir: str | Path, fold: int, data: str | None = None, device: str = "auto",
              weights: str = "best", **overrides) -> LoadedFold:
    """A run folder's fold ``fold`` as trained (``best`` or ``last`` weights), its test split
    under the run's protocol (on the run's data or ``data``) and the text it reads;
    ``overrides``: TrainConfig keys (batch sizes, workers)."""
    from hiva.data.dataset import AUDataset, has_intensities
    from hiva.data.transforms import eval_transform
    from hiva.model.text import sample_text

    run_dir = resolve_checkpoint(run_dir)  # a Hub id: the export's snapshot in the Hub cache
    # An export folder (`hiva export`, `hiva import-checkpoint`): one set of weights, scored on
    # fold ``fold`` of the data given, under the protocol its train config holds.
    ck = open_checkpoint(run_dir, None if is_export(run_dir) else fold, weights)
    if ck.export and not data:
        raise HivaError(f"{run_dir} is an export folder: pass --data (a manifest, bp4d:DIR or "
                        "disfa:DIR) whose fold --fold to score")
    cfg = load_config(TrainConfig, ck.config_file, data=data, resume=None, device=device,
                      **overrides)
    if cfg.text_bank:  # relative: to where training ran, here, or the export folder
        cfg = dataclasses.replace(cfg, text_bank=str(run_path(cfg.text_bank, cfg.out, run_dir)))
    wfile = ck.weights
    d = init_dist(device)
    dev = pick_device(device, d)
    df, scheme = load_data(cfg.data)
    mc, meta = read_checkpoint(wfile)
    aus = mc.aus
    text = load_text(mc, aus, cfg.text_bank, cfg.text_encoder)
    resolve_aus(dataclasses.replace(cfg, aus=aus), df)  # the data must label the run's AUs
    _, made = make_folds(dataclasses.replace(cfg, folds=()), df, scheme)
    folds = {k: t for k, _, t in made}
    if fold not in folds:
        raise HivaError(f"fold {fold} is not in this run's folds {sorted(folds)}")
    model = restore(mc, wfile, meta, dev, text, cfg.channels_last)
    mean, std = model.normalisation()
    # A model with the intensity head is scored on intensities where the data has them.
    ds = AUDataset(folds[fold], aus, eval_transform(mean, std, mc.input_size, cfg.resize_to),
                   intensity=mc.has_intensity and has_intensities(folds[fold], aus))
    txt = (sample_text(text.bank, aus, cfg.eval_text_per_au, train=False)
           if text.bank is not None else None)
    return LoadedFold(cfg, wfile, meta, model, folds[fold], ds, txt, d, dev, ck.export)


def evaluate(run_dir: str | Path, fold: int, data: str | None = None, device: str = "auto",
             batch_size: int | None = None, num_workers: int | None = None,
             weights: str = "best", out: str | Path | None = None) -> dict:
    """Recompute fold ``fold``'s test metrics from ``run_dir``'s weights (``best`` or ``last``;
    a run folder, an export folder or an export's Hub id ``OWNER/NAME[@REVISION]``); writes
    ``evaluate.json`` and the predictions into ``out`` (default: the run's ``fold{k}/``, the
    export folder; a Hub id needs ``out``: the Hub cache is not written into)."""
    if out is not None:
        require_dir_path(out, "--out")
    elif not Path(run_dir).exists():
        if hub_model_id(str(run_dir)):
            raise HivaError(f"--checkpoint {run_dir} is a Hub model: pass --out DIR for "
                            "the metrics and the predictions (the Hub cache is not written into)")
    lf = load_fold(run_dir, fold, data, device, weights, eval_batch_size=batch_size,
                   num_workers=num_workers)
    cfg, wfile, meta, model, ds, txt, d, dev = (lf.cfg, lf.weights, lf.meta, lf.model,
                                                lf.dataset, lf.text, lf.dist, lf.device)
    aus = model.cfg.aus
    pr = predict(model, ds, cfg, dev, txt, d, amp_dtype(cfg.amp, dev))
    res = {"fold": fold, "weights": str(wfile), "epoch": meta.get("epoch"),
           "test": au_metrics(pr.probs, pr.targets, pr.mask, aus)}
    if pr.localisation is not None:  # the data has landmarks: score the maps on the regions
        res["localisation"] = localisation_scores(pr.localisation, pr.targets, pr.mask, aus)
    if pr.intensity is not None:
        res["intensity"] = intensity_metrics(pr.intensity, pr.intensity_targets, aus)
    if d.main:
        # a run's fold folder, or an export folder (one file per scored fold), or ``out``
        dest = wfile.parent if out is None else writable_dir(out, "--out")
        jfile, pfile = evaluated_files(dest, fold, weights, export=lf.export)
        save_predictions(pfile, lf.test, aus, pr)
        write_text_atomic(jfile, json.dumps(res, indent=2))
        t = res["test"]
        print(format_table({fold_label(fold): t,
                            "all-pos": {"f1": t["baseline_f1"],
                                        "mean_f1": t["mean_baseline_f1"]}}, aus,
                           f"Test F1 ×100 of {wfile}"), flush=True)
        if "intensity" in res:
            print(intensity_table({fold_label(fold): res["intensity"]}, aus), flush=True)
    return res
