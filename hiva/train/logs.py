"""What a training run writes besides weights: ``history.csv`` (per epoch), ``steps.csv`` (per
optimizer step) and TensorBoard scalars, by rank 0 only and without doubling rows on resume; the
per-frame test predictions; the identity header every weights file carries.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hiva.config import config_dict
from hiva.runs import HISTORY, STEPS, TENSORBOARD
from hiva.runtime import atomic_write
from hiva.textbank import Text
from hiva.train.steps import Predictions


def save_predictions(path: Path, df, aus, pr: Predictions) -> None:
    """Per-frame test predictions (path, subject, sequence, frame, then p/y per AU; y null where
    unknown; with landmarks also ``energy_``/``pointing_``/``energy_chance_``/
    ``pointing_chance_AUxx``, NaN where the AU has no region; with the intensity head ``r_AUxx``,
    the predicted intensity 0-5, and ``i_AUxx``, the labelled one, NaN where unknown) as
    Parquet: what subject-level bootstraps and error analysis read."""
    import pandas as pd

    rows = df.iloc[pr.index]
    out = pd.DataFrame({c: rows[c].to_numpy() for c in ("path", "subject", "sequence", "frame")})
    for j, a in enumerate(aus):
        out[f"p_AU{int(a):02d}"] = pr.probs[:, j].astype(np.float32)
        y = pd.array(pr.targets[:, j].astype(np.int8), dtype="Int8")
        y[~pr.mask[:, j]] = pd.NA
        out[f"y_AU{int(a):02d}"] = y
    for key, v in (pr.localisation or {}).items():
        for j, a in enumerate(aus):
            out[f"{key}_AU{int(a):02d}"] = v[:, j].astype(np.float32)
    if pr.intensity is not None:
        for j, a in enumerate(aus):
            out[f"r_AU{int(a):02d}"] = pr.intensity[:, j].astype(np.float32)
            out[f"i_AU{int(a):02d}"] = pr.intensity_targets[:, j].astype(np.float32)
    atomic_write(path, lambda tmp: out.to_parquet(tmp, index=False))


class RunLogs:
    """history.csv, steps.csv and TensorBoard, written by rank 0 only; on resume rows after the
    checkpoint are dropped so nothing doubles."""

    def __init__(self, folder: Path, main: bool, tensorboard: bool, keep_step: int,
                 keep_epoch: int):
        self.folder, self.main = folder, main
        self.tb = None
        if not main:
            return
        for name, key, keep in ((STEPS, "step", keep_step), (HISTORY, "epoch", keep_epoch)):
            path = folder / name
            if path.exists():
                with open(path, newline="") as f:
                    rows = [r for r in csv.DictReader(f) if int(r[key]) <= keep]
                self._write(path, rows, mode="w")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(folder / TENSORBOARD), purge_step=keep_step + 1)

    @staticmethod
    def _write(path: Path, rows: list[dict], mode: str = "a") -> None:
        if not rows:
            if mode == "w":
                path.unlink(missing_ok=True)
            return
        new = mode == "w" or not path.exists()
        with open(path, mode, newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)

    def steps(self, rows: list[dict]) -> None:
        """Rows of optimizer steps (``LossTally.flush``), in order."""
        if self.main:
            self._write(self.folder / STEPS, rows)
            if self.tb is not None:
                for row in rows:
                    for k, v in row.items():
                        if k != "step":
                            self.tb.add_scalar(f"train/{k}", v, row["step"])

    def epoch(self, row: dict, step: int) -> None:
        if self.main:
            self._write(self.folder / HISTORY, [row])
            if self.tb is not None:
                for k, v in row.items():
                    if k != "epoch" and isinstance(v, (int, float)) and v == v:
                        self.tb.add_scalar(f"epoch/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def identity_meta(mc, text: Text, extra: dict) -> dict:
    return dict(
        aus=list(mc.aus), text_fingerprint=text.fingerprint or "", text_encoder=text.encoder or "",
        model_config=config_dict(mc), **extra,
    )
