"""The Model tab's work, without Gradio: what a loaded checkpoint was trained on and how it scored.

From a ``hiva train`` run folder: the fold's ``metrics.json`` (test F1 per AU at 0.5 — the
protocol number —, at thresholds tuned on validation, and the maps' energy in each AU's region),
its ``curves.png`` and ``per_au_f1.png``, and the run's ``config.yaml``. From a ``hiva export``
folder: the test F1 its ``config.json`` kept and its ``train_config.yaml``; the curves stay with
the run.
"""

from __future__ import annotations

import json

from hiva.facs import AUS, au_column
from hiva.runs import (
    CURVES,
    EXPORT_CONFIG,
    EXPORT_INFO,
    METRICS,
    PER_AU_PLOT,
    RUN_CONFIG,
    fold_dir,
    fold_metrics,
    is_export,
)


def _per_au(block: dict | None, key: str, aus) -> dict[int, float]:
    if not block or key not in block or "aus" not in block:
        return {}
    return {int(a): v for a, v in zip(block["aus"], block[key]) if a in aus}


class ModelView:
    """``loaded``: a ``hiva.predict.loader.Loaded`` (``DetectView.det.loaded``)."""

    def __init__(self, loaded):
        self.ld = loaded
        self.export = is_export(loaded.source)
        self.fold_dir = None if self.export else fold_dir(loaded.source, loaded.fold)
        if self.export:
            info = json.loads((loaded.source / EXPORT_INFO).read_text())
            test = dict(info.get("test") or {})
            test["aus"] = info.get("aus")
            self.metrics = {"test": test}
        else:
            self.metrics = fold_metrics(self.fold_dir)  # {}: a fold still training

    def summary(self) -> str:
        """Markdown: where the weights come from, the text they read, thresholds, alignment."""
        ld, mc = self.ld, self.ld.mc
        kind = "export" if self.export else f"run, fold {ld.fold}"
        epoch = ld.meta.get("epoch")
        lines = [f"**Checkpoint:** `{ld.weights}` ({kind}"
                 + (f", epoch {epoch}" if epoch is not None else "") + ")",
                 f"**Architecture:** {mc.arch}, backbone {mc.backbone}, input {mc.input_size}px",
                 f"**Text:** mode `{mc.text_mode}`"
                 + (f", bank `{ld.text_bank}`" if ld.text_bank else ""),
                 f"**Thresholds:** {ld.threshold_source}",
                 f"**Alignment:** {'on' if ld.align else 'off'} ({ld.align_source})",
                 f"**Training data:** `{ld.cfg.data}`"]
        m = self.metrics
        if m.get("frames"):
            lines.append("**Frames:** " + ", ".join(f"{k} {v}" for k, v in m["frames"].items()))
        if not m:
            lines.append(f"*No {METRICS} for this fold: the run has not finished testing.*")
        return "  \n".join(lines)

    def f1_table(self):
        """One row per AU (and a mean row): the threshold the page uses, test F1 ×100 at 0.5
        (the protocol's number) and at the thresholds tuned on validation, and the share of the
        AU's map in its region with its chance level; a column the checkpoint has no figure for
        is left out."""
        import pandas as pd

        aus = self.ld.aus
        m = self.metrics
        cols = {"test F1 (at 0.5)": _per_au(m.get("test"), "f1", aus),
                "tuned F1 (val thresholds)": _per_au(m.get("test_tuned"), "f1", aus),
                "region energy": _per_au(m.get("localisation"), "energy", aus),
                "region energy chance": _per_au(m.get("localisation"), "energy_chance", aus)}
        cols = {k: v for k, v in cols.items() if v}
        rows = []
        for i, a in enumerate(aus):
            r = {"AU": au_column(a), "name": AUS[a].name if a in AUS else "",
                 "threshold": round(float(self.ld.thresholds[i]), 3)}
            for k, v in cols.items():
                x = v.get(a)
                scale = 100 if "F1" in k else 1
                r[k] = None if x is None else round(float(x) * scale, 1 if scale == 100 else 3)
            rows.append(r)
        df = pd.DataFrame(rows)
        if cols:
            mean = {"AU": "mean", "name": "", "threshold": None}
            for k in cols:
                mean[k] = round(float(df[k].dropna().mean()), 1 if "F1" in k else 3)
            df = pd.concat([df, pd.DataFrame([mean])], ignore_index=True)
        return df

    def curves(self) -> list[tuple[str, str]]:
        """(PNG path, caption) of the fold's training figures that exist."""
        if self.fold_dir is None:
            return []
        out = []
        for name, cap in ((CURVES, "training curves"), (PER_AU_PLOT, "per-AU test F1")):
            p = self.fold_dir / name
            if p.is_file():
                out.append((str(p), cap))
        return out

    def config_text(self) -> str:
        """The training configuration as YAML (the run's resolved TrainConfig)."""
        f = self.ld.source / (EXPORT_CONFIG if self.export else RUN_CONFIG)
        try:
            return f.read_text()
        except OSError:
            return f"# {f} is missing"

    @property
    def note(self) -> str:
        if self.export:
            return ("An export keeps the test F1 but not the training curves; open its run "
                    "folder for those.")
        if not self.curves():
            return "This run wrote no plots (trained with `plots: false`)."
        return ""
