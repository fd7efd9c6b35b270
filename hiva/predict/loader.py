"""Loading a trained HiVA for inference, from a ``hiva train`` run folder or a ``hiva export``
folder, the same way ``hiva evaluate`` does (``hiva.textbank.load_text``,
``hiva.model.factory``: ``build_model``, strict ``load_weights``, the identity check against the
text bank).

Reads, from a run folder: its config, one fold's best (or last) weights and the per-AU
thresholds tuned on validation, when the run tuned them. From an export folder: its config,
weights and text bank. A Hub model id ``OWNER/NAME[@REVISION]`` names an export pushed with
``hiva export --push``: its snapshot in the local Hub cache is the export folder. The folders'
layout: ``hiva.runs``. Writes nothing (but the Hub cache).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiva.config import load_config
from hiva.errors import HivaError
from hiva.model.archs import get_arch
from hiva.model.factory import read_checkpoint, restore
from hiva.predict.settings import check, detect_checks
from hiva.runs import open_checkpoint, resolve_checkpoint, run_path, tuned_thresholds
from hiva.runtime import Dist, amp_dtype, pick_device
from hiva.textbank import load_text
from hiva.train.config import TrainConfig


@dataclass
class Loaded:
    """Everything inference needs, built once."""

    model: Any  # hiva.model.hiva.HiVA, eval mode, on ``device``
    mc: Any  # ModelConfig
    cfg: Any  # TrainConfig of the run
    aus: tuple[int, ...]
    text: Any  # hiva.textbank.Text
    text_input: tuple[Any, Any]  # (N×M×D, N×M mask) or (None, None) for random text
    thresholds: list[float]
    threshold_source: str  # "tuned on validation (fold k)" | "0.5" | "given"
    align: bool  # the preprocessing the model was trained with (see ``default_align``)
    align_source: str
    device: Any
    amp: Any  # autocast dtype or None
    weights: Path
    meta: dict
    source: Path  # the run or export folder
    fold: int | None
    text_bank: str | None  # resolved bundle path (corpus mode)
    text_rows: list[list[int]] | None = None  # per AU, the bank row behind each text position
    channels_last: bool = False  # the run's memory format (``hiva.predict.inference.prepare``)


def default_align(cfg, run_dir: Path) -> tuple[bool, str]:
    """Align faces at prediction iff the model was trained on aligned crops: a manifest written by
    ``hiva data align`` says so. A model trained on the synthetic set saw whole rendered frames
    (MediaPipe finds ~90% of those faces at 160 px, fewer at 64 px, and its crop is tighter than
    the renderer's framing), so it is scored on whole frames. Unknown training data → align, the
    safe choice for real footage. A relative ``data`` is found as the run's own files are
    (``hiva.runs.run_path``: a run opened from another folder still knows what it saw)."""
    data = str(getattr(cfg, "data", "") or "")
    if data.startswith(("bp4d:", "disfa:")):
        return False, f"trained on whole {data.split(':')[0]} frames"
    if data and (p := run_path(data, cfg.out, run_dir)).is_file():
        from hiva.data.manifest import face_framing

        try:
            framing = face_framing(p)
        except Exception:  # noqa: BLE001 — provenance only; fall through to the default
            framing = "unaligned"
        return {"aligned": (True, "trained on aligned crops"),
                "synthetic": (False, "trained on whole synthetic frames")}.get(
                    framing, (False, "trained on unaligned frames"))
    return True, "training data unknown"


def _text_bank_path(cfg, run_dir: Path, override: str | None) -> str | None:
    """The embed bundle a run reads: corpus and shuffled need one; random was sized by one when
    it was trained with one; names and learned need none."""
    mode = cfg.model.text_mode
    if not get_arch(cfg.model.arch).reads_text:  # no language path (ME-GraphAU)
        return None
    if mode in ("names", "learned") or (mode == "random" and not cfg.text_bank):
        return None
    cand = override or cfg.text_bank
    if not cand:
        raise HivaError(f"{run_dir} uses text_mode {mode} but names no text bank; pass "
                        "--text-bank DIR (the `hiva embed` folder it was trained with)")
    p = Path(cand) if override else run_path(cand, cfg.out, run_dir)
    if not p.exists():
        raise HivaError(f"the text bank {cand} of {run_dir} does not exist from here; pass "
                        "--text-bank DIR (the `hiva embed` folder it was trained with), or use a "
                        "`hiva export` folder, which carries its bank")
    return str(p)


def load(checkpoint: str | Path, fold: int | None = None, device: str = "auto",
         text_bank: str | None = None, weights: str = "best", threshold: str | float = "auto",
         align: bool | None = None, revision: str | None = None) -> Loaded:
    """Build the model of ``checkpoint`` (run folder, export folder, or the Hub model id of an
    export, ``OWNER/NAME[@REVISION]``, or ``revision``) with its weights loaded strictly and its
    evaluation text fixed. ``threshold``: "auto" (tuned ones when the run stored them, else 0.5)
    or a number for every AU. ``align`` None = the training preprocessing."""
    from hiva.model.text import sample_text

    src = resolve_checkpoint(checkpoint, revision)
    check(detect_checks(False, weights=weights, threshold=threshold))
    ck = open_checkpoint(src, fold, weights)
    export, info, wfile, k = ck.export, ck.info, ck.weights, ck.fold
    over = text_bank or (str(ck.bank) if ck.bank else None)  # an export carries its bank
    cfg = load_config(TrainConfig, ck.config_file, resume=None)
    mc, meta = read_checkpoint(wfile)
    aus = mc.aus
    bank_path = _text_bank_path(cfg, src, over)
    cfg = dataclasses.replace(cfg, aus=aus, text_bank=bank_path)
    text = load_text(mc, aus, bank_path, cfg.text_encoder)
    dev = pick_device(device, Dist())
    model = restore(mc, wfile, meta, dev, text)
    if text.bank is not None:
        t, m, rows = sample_text(text.bank, aus, cfg.eval_text_per_au, train=False,
                                 with_index=True)
        text_input = (t.to(dev), m.to(dev))
    else:
        text_input, rows = (None, None), None

    n = len(mc.outputs)  # the AUs, then any left/right outputs (OpenGraphAU)
    if threshold != "auto":
        ths, th_src = [float(threshold)] * n, "given"
    elif export:
        ths = [float(x) for x in info.get("thresholds") or [0.5] * n]
        th_src = info.get("threshold_source", "0.5")
    else:
        tuned = tuned_thresholds(ck.fold_folder, n)
        ths, th_src = (tuned, f"tuned on validation (fold {k})") if tuned else ([0.5] * n, "0.5")
    if align is None:
        if export and "align" in info:
            align, why = bool(info["align"]), info.get("align_source", "from the export")
        else:
            align, why = default_align(cfg, Path(src))
    else:
        why = "given"
    return Loaded(model=model, mc=mc, cfg=cfg, aus=tuple(aus), text=text, text_input=text_input,
                  thresholds=ths, threshold_source=th_src, align=bool(align), align_source=why,
                  device=dev, amp=amp_dtype(cfg.amp, dev), weights=wfile, meta=meta, source=src,
                  fold=None if k is None else int(k), text_bank=bank_path, text_rows=rows,
                  channels_last=bool(cfg.channels_last))


def model_input_transform(ld: Loaded):
    """The evaluation transform the trainer used (resize, centre crop, the backbone's
    normalisation)."""
    from hiva.data.transforms import eval_transform

    mean, std = ld.model.normalisation()
    return eval_transform(mean, std, ld.mc.input_size, ld.cfg.resize_to)


