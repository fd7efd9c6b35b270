"""What a fold's model starts from: its ``ModelConfig`` (the config's model section on the run's
AUs and text bank), weights copied from another run (``init_from``), the table the region prior is
placed from (FACS or the descriptions) and the region template (the average neutral face's AU
regions, the prior at evaluation and predict). Used by the trainer."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from hiva.errors import HivaError
from hiva.model.factory import fitting, read_tensors
from hiva.runs import fold_dir, weights_file
from hiva.text_regions import text_regions
from hiva.textbank import Text, load_text_bank
from hiva.textbank.controls import deranged
from hiva.train.config import TrainConfig


def model_config_for(cfg: TrainConfig, aus, text: Text):
    """The run's ``ModelConfig``: the config's model section on these AUs, its ``text_dim`` the
    text bank's width (a different one given in the config is refused)."""
    mc = cfg.model_config(aus)
    if text.dim is not None and mc.text_dim != text.dim:
        if mc.text_dim is not None:
            raise HivaError(f"model.text_dim {mc.text_dim} differs from the text bank's width "
                            f"{text.dim}; drop text_dim from the config")
        mc = replace(mc, text_dim=text.dim)
    if mc.side_aus:
        raise HivaError("model.side_aus (left/right outputs) exist for imported OpenGraphAU "
                        "weights; training them needs left/right labels, which manifests do not "
                        "carry: drop side_aus")
    return mc


def prior_table(cfg: TrainConfig, aus) -> dict | None:
    """The {au: discs} table the region prior is placed from: None for ``map_prior_source``
    facs (``hiva.facs.REGIONS``); for corpus the face parts each AU's descriptions in
    ``cfg.text_bank`` move (``hiva.text_regions``); for shuffled those regions deranged
    across AUs (``model.text_seed``, as text_mode shuffled deranges the descriptions)."""
    mc = cfg.model
    if mc.map_prior == "none" or mc.map_prior_source == "facs":
        return None
    if not cfg.text_bank:
        raise HivaError(f"model.map_prior_source {mc.map_prior_source} reads the regions from "
                        "the descriptions: pass --text-bank EMBED_DIR (from `hiva embed`), or "
                        "set map_prior_source facs")

    table = text_regions(load_text_bank(cfg.text_bank, aus).texts)
    return deranged(table, aus, mc.text_seed) if mc.map_prior_source == "shuffled" else table


def init_weights(model, src: str, k: int, verbose: bool = True) -> int:
    """Copy into ``model`` the tensors of ``src`` (a run folder: its fold ``k``'s
    best.safetensors; or a .safetensors file) that it has under the same name and shape; the
    rest keep their initialisation. Returns how many were copied (none is an error)."""
    import torch

    p = Path(src)
    f = weights_file(fold_dir(p, k), "best") if p.is_dir() else p
    if not f.is_file():
        raise HivaError(f"init_from {src}: {f} does not exist; train that run (fold {k}) first, "
                        "or pass a .safetensors file")
    state = read_tensors(f, f"init_from {src}:", "train that run again, or pass another file")
    own = model.state_dict()
    hit = fitting(own, state)
    if not any(not n.endswith("num_batches_tracked") for n in hit):  # (BN step counters: any)
        raise HivaError(f"init_from {f}: no tensor fits this model (names or shapes differ); "
                        "pass weights of the same backbone and AUs")
    with torch.no_grad():
        for n, t in hit.items():
            own[n].copy_(t)
    if verbose:
        print(f"fold {k}: {len(hit)} of {len(own)} tensors from {f} (the rest as initialised)",
              flush=True)
    return len(hit)


def mean_regions(ds, limit: int = 256) -> np.ndarray:
    """The AU regions of the average face of ``ds`` (N×C×3 discs): the mean over up to
    ``limit`` evenly spaced frames with landmarks, through the dataset's own transform. Neutral
    landmarks (``prior_regions``) where the data has them, so the template is a face at rest."""
    idx = np.unique(np.linspace(0, len(ds) - 1, min(limit, len(ds))).round().astype(int))
    key = "prior_regions" if getattr(ds, "neutral", None) is not None else "regions"
    got = [item[key].numpy() for item in (ds[int(i)] for i in idx)
           if item is not None and key in item]
    if not got:
        return np.full((len(ds.aus), 1, 3), np.nan, np.float32)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (no region) stay NaN
        return np.nanmean(np.stack(got), axis=0).astype(np.float32)
