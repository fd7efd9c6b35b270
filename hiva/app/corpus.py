"""The Corpus tab of ``hiva app`` without the page: browse a description corpus by AU, template,
axis, LLM and words; its statistics and figure (``hiva.corpora.stats``); and search it by meaning
(cosine of sentence embeddings). No gradio here: ``hiva.app.ui`` draws the page and calls this.

Search compares a query with the rows only in the space of the model that embedded the rows: the
query is always encoded by that same model. With a text bank (``hiva embed`` output) whose texts
cover the corpus, its stored embeddings are reused and the query goes through the encoder its
manifest names; otherwise the corpus texts are encoded once, in memory, by the view's encoder.
Nothing loads a model before the first search (or the first ``stats()``), so opening a corpus and
browsing it is quick.
"""

from __future__ import annotations

import json
import numbers
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiva.errors import HivaError
from hiva.facs import AUS, au_column
from hiva.runs import run_path
from hiva.textbank.bundle import EMBEDDINGS, INDEX, MANIFEST, bundle_dirs
from hiva.textbank.encoders import load_encoder

if TYPE_CHECKING:
    import pandas as pd

BROWSE_COLUMNS = ("au", "text", "template", "axes", "llm")  # + "judge_score" when judged
SEARCH_COLUMNS = ("score", "au", "text", "template", "llm")


def corpus_of_text_bank(bank_dir: str | Path) -> str | None:
    """The corpus folder the text bank at ``bank_dir`` was embedded from (the ``corpus`` its
    ``manifest.json`` records, as ``hiva embed`` was given it; a relative one found as
    ``hiva.runs.run_path`` finds a run's bank), when that is a folder that exists; else
    None (no bundle, a names-only bank, a Hub id, a folder since moved)."""
    d = Path(bank_dir)
    found = [d / MANIFEST] if (d / MANIFEST).is_file() else \
        sorted(d.glob(f"shard-*-of-*/{MANIFEST}"))  # a sharded bundle: the shards share it
    if not found:
        return None
    try:
        manifest = json.loads(found[0].read_text())
        corpus, out = manifest.get("corpus"), (manifest.get("config") or {}).get("out")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(corpus, str) or not corpus.strip() or corpus == "names-only":
        return None

    # a relative corpus is relative to where `hiva embed` ran (the bank less its relative out)
    p = run_path(corpus, out if isinstance(out, str) else None, d)
    return str(p) if p.is_dir() else None


def parse_au(value: Any) -> int:
    """The AU number in ``value``: 12, "12", "AU12", "AU12 Lip Corner Puller" (a choices label)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    words = str(value).split()
    try:
        return int(words[0].upper().removeprefix("AU"))
    except (IndexError, ValueError):
        raise HivaError(f"{value!r} is not an AU; pick one from the list or type a number such "
                        "as 12 or AU12") from None


def _axes(raw: Any) -> dict[str, Any]:
    """A row's axes JSON object as a dict; {} for anything else (missing, malformed, a list)."""
    try:
        d = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _axis_value(v: Any) -> str:
    """One axis value as the page shows it ("(none)" for null, as ``hiva corpus stats`` does)."""
    if v is None:
        return "(none)"
    return v if isinstance(v, str) else json.dumps(v)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


class _SharedEncoder:
    """What ``frame_stats`` encodes through: the corpus texts come back as the view's search
    embeddings (one encoding pass for search and stats), any other texts go to the model."""

    def __init__(self, view: CorpusView):
        self._view = view

    @property
    def identity(self):
        index = self._view._index
        return getattr(index[2], "identity", None) if index else None

    def encode(self, texts, *args, **kwargs):
        pos, emb, enc = self._view._embeddings()
        if list(texts) == self._view._texts(pos):
            return emb
        return enc.encode(list(texts), *args, **kwargs)


class CorpusView:
    """One corpus, loaded once, for the page to browse, summarise and search.

    ``spec``: a corpus folder, an exported folder or a Hub id (``hiva.corpora.io.load_corpus``;
    its HivaError propagates). ``text_bank``: an embed bundle folder whose stored embeddings
    search reuses when its texts cover the corpus. ``encoder``: an object with
    ``encode(list[str]) -> (n, d)``, a spec for ``load_encoder`` or None (the shipped
    all-MiniLM-L6-v2), used when there is no usable text bank; a spec or None is loaded on first
    need, and ``self.encoder`` is then the loaded object.

    Attributes: ``spec``, ``df`` (the rows, ``CORPUS_SCHEMA`` columns), ``manifest`` (the
    generation manifest; {} when ``spec`` is not a local hiva folder), ``encoder``,
    ``search_note`` (after the first search or ``stats()``: where the embeddings came from, and
    why a text bank was not used; "" before).
    """

    def __init__(self, spec: str | Path, *, config_name: str | None = None,
                 text_bank: str | Path | None = None, encoder: Any = None):
        from hiva.corpora.io import load_corpus, read_corpus_manifest

        self.spec = str(spec)
        self.config_name = config_name
        self.text_bank = text_bank
        self.encoder = encoder
        self.df = load_corpus(spec, config_name).reset_index(drop=True)
        try:
            self.manifest = read_corpus_manifest(spec) if Path(spec).is_dir() else {}
        except (OSError, ValueError):  # a damaged manifest: the rows are still worth a look
            self.manifest = {}
        self.search_note = ""
        raw = self.df["axes"].tolist() if "axes" in self.df else [None] * len(self.df)
        self._row_axes = [_axes(a) for a in raw]
        # Rows whose axes are JSON but not an object ("[1, 2]"): frame_stats reads them as
        # objects, so it gets "{}" for them (as it already does for malformed JSON).
        self._odd_axes = [i for i, (a, d) in enumerate(zip(raw, self._row_axes))
                          if not d and isinstance(a, str) and a.strip() not in ("", "{}")]
        self._au = self.df["au"].astype(int).to_numpy()
        self._lock = threading.RLock()  # the page may call from several threads at once
        self._stats: dict | None = None
        self._index: tuple | None = None  # (row positions, unit embeddings, query encoder)

    # -- browsing -----------------------------------------------------------------------------

    def choices(self) -> dict[str, list[str]]:
        """The filter options: "au" (labels like "AU01 Inner Brow Raiser", by AU number),
        "template" (template ids), "llm", "axes" ("name=value"); each sorted, no duplicates."""
        names: dict[int, str] = {}
        for a, n in zip(self._au, self.df.get("au_name", [None] * len(self.df))):
            if not names.get(int(a)) and isinstance(n, str) and n.strip():
                names[int(a)] = n.strip()
        labels = []
        for a in sorted(set(self._au.tolist())):
            name = names.get(a) or (AUS[a].name if a in AUS else "")
            labels.append(f"{au_column(a)} {name}".strip())
        pairs = {f"{k}={_axis_value(v)}" for d in self._row_axes for k, v in d.items()}
        return {
            "au": labels,
            "template": self._distinct("template_id"),
            "llm": self._distinct("llm"),
            "axes": sorted(pairs),
        }

    def _distinct(self, column: str) -> list[str]:
        if column not in self.df:
            return []
        return sorted(self.df[column].dropna().astype(str).unique().tolist())

    def browse(self, au: Any = None, template: str | None = None, axis: str | None = None,
               llm: str | None = None, contains: str | None = None,
               limit: int | None = 200) -> tuple[pd.DataFrame, int]:
        """The rows matching every given filter (None or "" = no filter), sorted by AU then text,
        at most ``limit`` of them (None: all), and how many matched before the limit.

        ``au``: 12, "12", "AU12" or a ``choices()["au"]`` label; ``axis``: "name=value";
        ``contains``: words the text holds (any case). Columns: au ("AU12"), text, template,
        axes ("name=value, name=value"), llm, and judge_score when any row of the corpus has one.
        """
        import numpy as np

        df = self.df
        keep = np.ones(len(df), dtype=bool)
        if not _blank(au):
            keep &= self._au == parse_au(au)
        if not _blank(template):
            keep &= (df["template_id"].astype(str) == str(template).strip()).to_numpy()
        if not _blank(llm):
            keep &= (df["llm"].astype(str) == str(llm).strip()).to_numpy()
        if not _blank(axis):
            name, eq, value = str(axis).partition("=")
            if not eq or not name.strip():
                raise HivaError(f"axis {axis!r} is not name=value; pick one from the list, "
                                "e.g. perspective=clinical")
            name, value = name.strip(), value.strip()
            keep &= np.array([name in d and _axis_value(d[name]) == value
                              for d in self._row_axes], dtype=bool)
        if not _blank(contains):
            keep &= df["text"].astype(str).str.contains(str(contains).strip(), case=False,
                                                         regex=False).to_numpy()
        pos = np.flatnonzero(keep)
        texts = df["text"].astype(str).to_numpy()[pos]
        pos = pos[np.lexsort((texts, self._au[pos]))]  # by AU, then text
        total = len(pos)
        if limit is not None:
            pos = pos[:max(int(limit), 0)]
        return self._display(pos, BROWSE_COLUMNS), total

    def _display(self, pos, columns, score=None) -> pd.DataFrame:
        """The rows at positions ``pos`` as the page shows them."""
        import pandas as pd

        rows = self.df.iloc[pos]
        cols = {
            "score": score,
            "au": [au_column(int(a)) for a in self._au[pos]],
            "text": rows["text"].astype(str).tolist(),
            "template": rows["template_id"].astype(str).tolist(),
            "axes": [", ".join(f"{k}={_axis_value(v)}" for k, v in self._row_axes[i].items())
                     for i in pos],
            "llm": rows["llm"].astype(str).tolist(),
        }
        out = pd.DataFrame({c: cols[c] for c in columns})
        if columns == BROWSE_COLUMNS and "judge_score" in self.df and \
                self.df["judge_score"].notna().any():
            out["judge_score"] = pd.array(rows["judge_score"].tolist(), dtype="Int64")
        return out

    # -- statistics ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``hiva.corpora.stats.frame_stats`` of the corpus, computed once. Its identifiability
        uses the search embeddings (the text bank's, or the view's encoder's), so stats and
        search encode the corpus at most once between them."""
        from hiva.corpora.stats import frame_stats

        with self._lock:
            if self._stats is None:
                df = self.df
                if self._odd_axes:
                    df = df.copy()
                    df.loc[self._odd_axes, "axes"] = "{}"
                self._stats = frame_stats(df, self.manifest, encoder=_SharedEncoder(self))
            return self._stats

    def stats_text(self) -> str:
        """The statistics as ``hiva corpus stats`` prints them."""
        from hiva.corpora.stats import format_stats

        return format_stats(self.stats())

    def stats_plot(self, path: str | Path) -> Path:
        """The statistics figure (rows, identifiability, contamination per AU) as a PNG at
        ``path``; returns ``path``."""
        from hiva.corpora.stats import plot_stats

        plot_stats(self.stats(), path)
        return Path(path)

    # -- search -------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, au: Any = None) -> pd.DataFrame:
        """The ``k`` descriptions nearest in meaning to ``query`` (cosine of sentence embeddings,
        best first), of AU ``au`` only when given. Columns: score (cosine, 3 places), au, text,
        template, llm."""
        import numpy as np

        q = "" if query is None else str(query).strip()
        if not q:
            raise HivaError("type words to search for, e.g. 'eyebrows pulled together'; the "
                            "descriptions closest in meaning come first")
        want = None if _blank(au) else parse_au(au)
        pos, emb, enc = self._embeddings()
        if want is not None:
            sel = self._au[pos] == want
            pos, emb = pos[sel], emb[sel]
        if not len(pos):
            return self._display(pos, SEARCH_COLUMNS, score=[])
        qv = np.asarray(enc.encode([q]), dtype=np.float32).reshape(-1)
        qv = qv / max(float(np.linalg.norm(qv)), 1e-12)
        sims = emb @ qv
        best = np.argsort(-sims, kind="stable")[:max(int(k), 0)]
        return self._display(pos[best], SEARCH_COLUMNS,
                             score=[round(float(s), 3) for s in sims[best]])

    def _texts(self, pos) -> list[str]:
        return self.df["text"].astype(str).to_numpy()[pos].tolist()

    def _embeddings(self):
        """(row positions of the non-empty texts, their unit embeddings, the query encoder),
        computed on first call."""
        import numpy as np

        with self._lock:
            if self._index is None:
                text = self.df["text"]
                ok = (text.notna() & (text.astype(str).str.strip() != "")).to_numpy()
                pos = np.flatnonzero(ok)
                texts = self._texts(pos)
                got = self._from_bank(texts) if self.text_bank else None
                if got is None:
                    enc = self._own_encoder()
                    emb = np.asarray(enc.encode(texts), dtype=np.float32) if texts else None
                    note = f"{len(texts)} descriptions encoded with {_name(enc)}"
                    self.search_note = f"{self.search_note}; {note}" if self.search_note \
                        else note
                else:
                    emb, enc = got
                if emb is None:
                    emb = np.zeros((0, 1), dtype=np.float32)
                emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
                self._index = (pos, emb.astype(np.float32, copy=False), enc)
            return self._index

    def _own_encoder(self):
        """``self.encoder``, loaded first when it is a spec or None."""
        if self.encoder is None or isinstance(self.encoder, (str, Path)):
            self.encoder = load_encoder(None if self.encoder is None else str(self.encoder))
        return self.encoder

    def _from_bank(self, texts: list[str]):
        """(embeddings of ``texts`` from the text bank, the encoder that made them), or None
        with ``search_note`` saying why the bank cannot serve (then the corpus is encoded)."""
        import numpy as np
        import pandas as pd
        from safetensors.numpy import load_file

        bank = self.text_bank
        try:
            dirs = bundle_dirs(bank)
            manifests = [json.loads((d / MANIFEST).read_text()) for d in dirs]
            emb = np.concatenate([load_file(str(d / EMBEDDINGS))["embeddings"] for d in dirs])
            index = pd.concat([pd.read_parquet(d / INDEX, columns=["text"]) for d in dirs],
                              ignore_index=True)
            fingerprint = manifests[0]["encoder_fingerprint"]
        except HivaError as e:
            self.search_note = f"text bank not used ({e})"
            return None
        except Exception as e:  # a damaged bundle: search still works by encoding the corpus
            self.search_note = (f"text bank {bank} not used: unreadable ({type(e).__name__}); "
                                "rerun `hiva embed` for it")
            return None
        if len({m.get("encoder_fingerprint") for m in manifests}) > 1 or len(emb) != len(index):
            self.search_note = (f"text bank {bank} not used: its shards do not fit together; "
                                "rerun `hiva embed` for it")
            return None
        row = {t: i for i, t in enumerate(index["text"].astype(str))}
        missing = sum(t not in row for t in texts)
        if missing:
            self.search_note = (f"text bank {bank} not used: it lacks {missing} of the "
                                f"{len(texts)} corpus texts (embedded from another corpus?)")
            return None
        enc = self._bank_encoder(manifests[0], fingerprint)
        if enc is None:
            return None
        self.search_note = (f"{len(texts)} descriptions, embeddings from the text bank {bank} "
                            f"({manifests[0].get('encoder')})")
        return emb[[row[t] for t in texts]].astype(np.float32, copy=False), enc

    def _bank_encoder(self, manifest: dict, fingerprint: str):
        """The encoder that made the bank (the view's own when it is that one), or None with
        ``search_note`` saying why."""
        if getattr(self.encoder, "identity_hash", None) == fingerprint:
            return self.encoder

        cfg = manifest.get("config") or {}
        try:
            enc = load_encoder(cfg.get("encoder"), dtype=cfg.get("dtype") or "auto",
                               max_length=cfg.get("max_length"),
                               normalize=bool(manifest.get("normalised", True)))
        except HivaError as e:
            self.search_note = f"text bank {self.text_bank} not used: its encoder is not here ({e})"
            return None
        made = manifest.get("encoder_identity") or {}
        if (enc.identity.get("weights"), enc.dim) != (made.get("weights"), manifest.get("dim")):
            self.search_note = (f"text bank {self.text_bank} not used: its encoder "
                                f"{manifest.get('encoder')} has other weights here than when "
                                "the bank was made; rerun `hiva embed`")
            return None
        return enc


def _name(enc: Any) -> str:
    return str(getattr(enc, "name", None) or type(enc).__name__)


__all__ = ["CorpusView", "corpus_of_text_bank", "parse_au"]
