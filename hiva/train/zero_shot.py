"""``hiva evaluate --zero-shot``: AUs scored from their descriptions alone, with a CLIP-family model
whose image and text spaces are already aligned; no AU label trains anything.

For every frame, the cosine between CLIP's image embedding and each AU's text prototype (the unit
mean of its descriptions' unit embeddings, from a bank that ``hiva embed --encoder clip:NAME``
wrote with the same CLIP) is the AU's score. The run's protocol (folds, validation subjects) is
``hiva train``'s: per fold, each AU's cosine threshold is calibrated on the validation subjects
(the one that maximises validation F1; the ranking itself never sees a label), and the test fold
is scored with it. Probabilities are σ((cos − t_i)/s_i) with s_i the validation spread, so
p ≥ 0.5 exactly where cos ≥ t_i; AUC is the raw cosine's. Writes ``OUT/zero_shot.json``,
``OUT/metrics.json`` (the shape ``hiva train`` writes, so ``hiva report`` reads it) and
``OUT/fold{k}/test_predictions.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.runs import PREDICTIONS, ZERO_SHOT, fold_dir, write_metrics
from hiva.runtime import Dist, pick_device, require_dir_path, write_text_atomic
from hiva.textbank import load_text_bank
from hiva.textbank.controls import prototypes
from hiva.train.config import TrainConfig
from hiva.train.logs import save_predictions
from hiva.train.metrics import au_metrics, f1_from_counts
from hiva.train.protocol import make_folds, read_data, split_pool, summarise, summary_table
from hiva.train.steps import Predictions, make_loader


def calibrate(cos: np.ndarray, y: np.ndarray, m: np.ndarray):
    """Per AU (threshold, spread): the cosine threshold maximising F1 on these (validation)
    frames, among their observed cosines; an AU without a known positive keeps the
    median. Spread = the cosines' standard deviation (for σ((cos − t)/s))."""
    n = cos.shape[1]
    th, sd = np.zeros(n), np.ones(n)
    for i in range(n):
        c, yi = cos[m[:, i], i], y[m[:, i], i].astype(int)
        if not len(c):
            continue
        sd[i] = max(float(c.std()), 1e-6)
        th[i] = float(np.median(c))
        if yi.sum() == 0:
            continue
        best = -1.0
        # candidates: observed cosines (at most ~200 of them, at evenly spaced quantiles)
        for t in np.unique(np.quantile(c, np.linspace(0.0, 1.0, 201), method="lower")):
            pr = c >= t
            f = f1_from_counts([(pr & (yi == 1)).sum()], [(pr & (yi == 0)).sum()],
                               [(~pr & (yi == 1)).sum()])[0]
            if f > best:
                best, th[i] = f, float(t)
    return th, sd


def image_embeddings(bb, df, cfg: TrainConfig, device):
    """(unit CLIP image embeddings of every row of ``df`` (NaN rows: unreadable), rows read)."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from hiva.data.dataset import AUDataset
    from hiva.data.transforms import eval_transform

    ds = AUDataset(df, (), eval_transform(bb.mean, bb.std, cfg.model.input_size, cfg.resize_to))
    loader = make_loader(ds, range(len(ds)), cfg.eval_batch_size or cfg.batch_size, cfg, device,
                         cfg.seed, drop_last=False)
    out = np.full((len(df), bb.embed_dim), np.nan, dtype=np.float32)
    with torch.inference_mode():
        for batch in tqdm(loader, desc="zero-shot: image embeddings", unit="batch",
                          disable=not cfg.progress):
            if batch is None:
                continue
            e = bb.image_embeds(batch["image"].to(device))
            out[batch["index"].numpy()] = F.normalize(e.float(), dim=-1).cpu().numpy()
    return out


def zero_shot(cfg: TrainConfig, out: str | Path) -> dict:
    """Score ``cfg.data`` zero-shot with the CLIP of ``cfg.model.backbone`` and the bank
    ``cfg.text_bank``, on the folds of ``cfg``; returns (and writes) the summary."""
    from hiva.model.clip import ClipBackbone, is_clip

    if not is_clip(cfg.model.backbone):
        raise HivaError(f"--zero-shot needs a CLIP backbone whose image and text spaces are "
                        f"aligned (--backbone clip:NAME), not {cfg.model.backbone}")
    if not cfg.text_bank:
        raise HivaError("--zero-shot needs --text-bank DIR: the descriptions embedded with the "
                        "same CLIP (hiva embed --encoder clip:NAME)")
    outdir = require_dir_path(out, "--out")
    df, scheme, aus = read_data(cfg, Dist())
    df = df.reset_index(drop=True)
    bank = load_text_bank(cfg.text_bank, aus)
    if not str(bank.encoder).startswith("clip:"):
        raise HivaError(f"the text bank {cfg.text_bank} was embedded with {bank.encoder}, not a "
                        "CLIP text tower; embed the corpus with --encoder "
                        f"{cfg.model.backbone} (the backbone's own CLIP)")
    device = pick_device(cfg.device, Dist())
    bb = ClipBackbone(cfg.model.backbone, True, cfg.model.input_size).to(device).eval()
    if bb.embed_dim != bank.dim:
        raise HivaError(f"the CLIP image embedding has {bb.embed_dim} dims, the text bank "
                        f"{bank.dim}: embed the corpus with the same CLIP ({cfg.model.backbone})")
    protos = prototypes(bank.embeddings, aus).numpy()
    emb = image_embeddings(bb, df, cfg, device)
    cos_all = emb @ protos.T  # NaN rows stay NaN
    ok = ~np.isnan(cos_all).any(1)
    scheme, folds = make_folds(cfg, df, scheme)
    cols = [f"AU{a:02d}" for a in aus]
    results = {}
    for k, pool, test_df in folds:
        _, val_df, _ = split_pool(cfg, pool)

        def arrays(part):
            idx = part.index.to_numpy()
            idx = idx[ok[idx]]
            lab = part.loc[idx, cols].astype("Float64")
            return idx, cos_all[idx], lab.fillna(0).to_numpy(np.float32), lab.notna().to_numpy()

        if len(val_df) == 0:
            raise HivaError("--zero-shot calibrates each AU on validation subjects; set "
                            "val_fraction > 0")
        _, vc, vy, vm = arrays(val_df)
        th, sd = calibrate(vc, vy, vm)
        ti, tc, ty, tm = arrays(test_df)
        probs = 1.0 / (1.0 + np.exp(-(tc - th) / sd))
        metrics = au_metrics(probs, ty, tm, aus)
        raw = au_metrics(tc, ty, tm, aus)  # the ranking by cosine alone
        metrics["auc"], metrics["mean_auc"] = raw["auc"], raw["mean_auc"]
        res = {"fold": k, "test": metrics, "cos_thresholds": th.round(6).tolist(),
               "frames": {"val": int(len(vc)), "test": int(len(tc))}}
        folder = fold_dir(outdir, k)
        folder.mkdir(parents=True, exist_ok=True)
        pos = {int(i): j for j, i in enumerate(test_df.index)}
        pt = Predictions(np.array([pos[int(i)] for i in ti], dtype=np.int64),
                         probs.astype(np.float32), ty, tm, float("nan"))
        save_predictions(folder / PREDICTIONS, test_df, aus, pt)
        write_metrics(folder, res)
        results[k] = res
    summary = summarise(results, aus)
    summary.update(fold_scheme=scheme, zero_shot={
        "backbone": cfg.model.backbone, "text_bank": str(cfg.text_bank), "encoder": bank.encoder,
        "calibration": "per-AU cosine threshold maximising validation F1"})
    write_text_atomic(outdir / ZERO_SHOT, json.dumps(summary, indent=2))
    table = summary_table(summary)
    write_metrics(outdir, summary, table)
    print(table, flush=True)
    return summary
