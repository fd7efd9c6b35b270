"""Corpus statistics and quality figures (``hiva corpus stats``).

Reads a corpus (any spec ``load_corpus`` takes) and, for a local folder, its manifest; returns a
JSON-able dict and optionally writes a PNG. Per AU, the share of rows that pass each of the row
checks of ``hiva.corpora.filters`` (unknown words, template residue, repeated clauses, the
verifier's clause verdicts, a word that tells the AU from its neighbour), run on each row on its
own, so a corpus made before a check existed, or by another tool, is measured the same way;
with a judge pass (``judge_score``), how often the judge and the fact checks agree. Two more
quality figures:

- AU identifiability: the share of descriptions whose nearest AU centroid (cosine, sentence
  encoder) is their own AU. Each description is left out of its own AU's centroid, so a
  description cannot identify its AU just by being part of the centroid.
- Cross-AU contamination: the share of descriptions that name another AU: its code ("AU4",
  "action unit 12"), its FACS name in title case ("Lip Corner Puller"), or one of its muscles
  that is not also a muscle of the description's own AU.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiva.corpora.filters import ROW_CHECKS, each_check
from hiva.corpora.io import load_corpus, read_corpus_manifest
from hiva.facs import AUS, muscle_keys
from hiva.textbank.encoders import load_encoder

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_CODE = re.compile(r"\b(?:AU|action\s+unit)\s*-?\s*(\d{1,2})\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _contamination_tables():
    owners: dict[str, set[int]] = {}
    for a in AUS.values():
        for mu in a.muscles:
            for k in muscle_keys(mu):
                owners.setdefault(k, set()).add(a.number)
    # Longest first so "levator labii superioris alaeque nasi" (AU9) wins over
    # "levator labii superioris" (AU10) at the same place; an optional plural s.
    keys = sorted(owners, key=len, reverse=True)
    muscle_re = re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")s?\b", re.I)
    names = {a.name: a.number for a in AUS.values()}
    name_re = re.compile(r"\b(" + "|".join(re.escape(n) for n in
                                          sorted(names, key=len, reverse=True)) + r")\b")
    return owners, muscle_re, names, name_re


def contamination(text: str, au: int) -> list[str]:
    """What in ``text`` names an AU other than ``au`` (empty list: clean).

    Items are like ``"code:AU4"``, ``"name:Lip Corner Puller"``, ``"muscle:zygomaticus major"``.
    A muscle counts only when it is not one of ``au``'s own muscles (orbicularis oris is AU
    22/23/24/28's, so it is clean in an AU24 description and contamination in an AU12 one).
    """
    owners, muscle_re, names, name_re = _contamination_tables()
    own_keys = {k for mu in (AUS[au].muscles if au in AUS else ()) for k in muscle_keys(mu)}
    hits = []
    for m in _CODE.finditer(text):
        if int(m.group(1)) != au:
            hits.append(f"code:AU{int(m.group(1))}")
    for m in name_re.finditer(text):
        if names[m.group(1)] != au:
            hits.append(f"name:{m.group(1)}")
    for m in muscle_re.finditer(text):
        k = m.group(1).lower()
        if k not in own_keys and owners[k] - {au}:
            hits.append(f"muscle:{k}")
    return hits


def identifiability(emb: np.ndarray, aus: np.ndarray) -> tuple[float, dict[int, float]]:
    """Share of rows whose nearest leave-one-out AU centroid (cosine) is their own AU.

    ``emb`` is (n, d); rows of AUs with a single description are left out (no centroid without
    them). Returns (overall share, {au: share})."""
    import numpy as np

    emb = np.asarray(emb, dtype=np.float64)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    aus = np.asarray(aus)
    labels = np.unique(aus)
    sums = np.stack([emb[aus == a].sum(0) for a in labels])
    counts = np.array([(aus == a).sum() for a in labels], dtype=np.float64)
    own = np.searchsorted(labels, aus)
    rows = np.arange(len(aus))
    # Cosine to each centroid: centroid direction is the sum (scale does not matter) ...
    sim = emb @ sums.T / np.maximum(np.linalg.norm(sums, axis=1), 1e-12)
    # ... except the own AU, whose sum loses this row.
    loo = sums[own] - emb
    loo_norm = np.linalg.norm(loo, axis=1)
    sim[rows, own] = (emb * loo).sum(1) / np.maximum(loo_norm, 1e-12)
    valid = counts[own] > 1
    if len(labels) < 2 or not valid.any():
        return float("nan"), {}
    hit = (sim.argmax(1) == own) & valid
    per = {int(a): float(hit[(aus == a) & valid].mean()) for i, a in enumerate(labels)
           if counts[i] > 1}
    return float(hit[valid].sum() / valid.sum()), per


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct-n: unique word n-grams / all word n-grams (lower case)."""
    total, uniq = 0, set()
    for t in texts:
        w = t.lower().split()
        grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
        total += len(grams)
        uniq.update(grams)
    return len(uniq) / total if total else 0.0


def corpus_stats(spec: str | Path, encoder: Any | None = None, samples: int = 3,
                 seed: int = 0, config_name: str | None = None,
                 identify: bool = True) -> dict[str, Any]:
    """Figures for one corpus. ``encoder``: an object with ``encode(list[str]) -> (n, d)``;
    None loads ``hiva.textbank.encoders.load_encoder(None)`` (shipped MiniLM) when ``identify``."""
    df = load_corpus(spec, config_name)
    manifest = read_corpus_manifest(spec) if Path(spec).is_dir() else {}
    return frame_stats(df, manifest, encoder=encoder, samples=samples, seed=seed,
                       identify=identify)


def frame_stats(df: pd.DataFrame, manifest: dict | None = None, encoder: Any | None = None,
                samples: int = 3, seed: int = 0, identify: bool = True) -> dict[str, Any]:
    import numpy as np

    manifest = manifest or {}
    texts = df["text"].astype(str).tolist()
    aus = df["au"].astype(int).to_numpy()
    words = np.array([len(t.split()) for t in texts]) if texts else np.zeros(0)
    per_axis: dict[str, Counter] = {}
    for a in df["axes"].tolist() if "axes" in df else []:
        try:
            d = json.loads(a) if a else {}
        except ValueError:
            d = {}
        for k, v in d.items():
            per_axis.setdefault(k, Counter())["(none)" if v is None else str(v)] += 1
    cont = [contamination(t, int(a)) for t, a in zip(texts, aus)]
    cont_flag = np.array([bool(c) for c in cont])
    kinds = Counter(h.split(":", 1)[0] for c in cont for h in c)
    what = Counter(h for c in cont for h in c)
    dd = manifest.get("dedup") or {}
    dedup_ratio = (dd["kept"] / dd["input"]) if dd.get("input") else None

    ident, ident_per = float("nan"), {}
    if identify and len(texts) and len(set(aus.tolist())) > 1:
        if encoder is None:
            encoder = load_encoder(None)
        emb = np.asarray(encoder.encode(texts))
        ident, ident_per = identifiability(emb, aus)

    found = [each_check(t, int(a)) for t, a in zip(texts, aus)]
    passed = {c: np.array([f[c] is None for f in found], dtype=bool) for c in ROW_CHECKS}
    all_pass = np.logical_and.reduce([passed[c] for c in ROW_CHECKS]) if texts else \
        np.zeros(0, dtype=bool)
    reasons = Counter(f["facts"].split(":")[0] for f in found if f["facts"])
    judge = _judge_agreement(df, passed["facts"]) if "judge_score" in df else None

    rng = np.random.default_rng(seed)
    per_au = {}
    for a in sorted(set(aus.tolist())):
        idx = np.flatnonzero(aus == a)
        pick = rng.choice(idx, size=min(samples, len(idx)), replace=False) if samples else []
        per_au[int(a)] = {
            "name": AUS[a].name if a in AUS else "",
            "rows": int(len(idx)),
            "mean_words": float(words[idx].mean()),
            "distinct_2": distinct_n([texts[i] for i in idx], 2),
            "identifiability": ident_per.get(int(a)),
            "contamination": float(cont_flag[idx].mean()),
            "checks": {c: float(passed[c][idx].mean()) for c in ROW_CHECKS},
            "checks_all": float(all_pass[idx].mean()),
            "failures": [f"{texts[i]}  [{'; '.join(f'{c}: {v}' for c, v in found[i].items() if v)}]"
                         for i in idx if not all_pass[i]][:samples],
            "samples": [texts[i] for i in sorted(pick)],
        }
    return {
        "rows": int(len(df)),
        "aus": len(per_au),
        "llms": sorted(df["llm"].astype(str).unique().tolist()) if "llm" in df else [],
        "mean_words": float(words.mean()) if len(words) else 0.0,
        "mean_chars": float(np.mean([len(t) for t in texts])) if texts else 0.0,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "dedup": dd or None,
        "dedup_kept_ratio": dedup_ratio,
        "filters": manifest.get("filters"),
        "filters_by_au": manifest.get("filters_by_au"),
        "checks": {c: float(passed[c].mean()) if texts else None for c in ROW_CHECKS},
        "checks_all": float(all_pass.mean()) if texts else None,
        "fact_reasons": dict(reasons),
        "judge": judge,
        "identifiability": ident,
        "identifiability_encoder": getattr(encoder, "identity", None) if encoder else None,
        "contamination": float(cont_flag.mean()) if len(cont_flag) else 0.0,
        "contamination_kinds": dict(kinds),
        "contamination_top": dict(what.most_common(10)),
        "per_axis": {k: dict(v.most_common()) for k, v in per_axis.items()},
        "per_au": per_au,
    }


def _judge_agreement(df, facts_pass) -> dict[str, Any] | None:
    """How the judge's 1-5 scores line up with the fact checks: mean score of rows that pass
    and that fail them, and the share of rows where "score ≥ 4" and "passes" agree."""
    import numpy as np

    score = df["judge_score"].to_numpy(dtype="float64", na_value=np.nan)
    ok = ~np.isnan(score)
    if not ok.any():
        return None
    good, fp = score[ok] >= 4, facts_pass[ok]
    mean = lambda m: float(score[ok][m].mean()) if m.any() else None  # noqa: E731
    return {"scored": int(ok.sum()), "mean_score_facts_pass": mean(fp),
            "mean_score_facts_fail": mean(~fp), "agreement": float((good == fp).mean()),
            "judge_good_facts_fail": int((good & ~fp).sum()),
            "judge_bad_facts_pass": int((~good & fp).sum())}


def plot_stats(stats: dict[str, Any], path: str | Path, title: str = "") -> None:
    """One chart: rows per AU (bars) with identifiability and contamination per AU beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    per = stats["per_au"]
    labels = [f"AU{a}" for a in per]
    x = np.arange(len(labels))
    rows = [per[a]["rows"] for a in per]
    ident = [np.nan if per[a]["identifiability"] is None else per[a]["identifiability"]
             for a in per]
    cont = [per[a]["contamination"] for a in per]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(x) + 3), 7), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 1.3]})
    ax1.bar(x, rows, color="#4c72b0")
    ax1.set_ylabel("descriptions")
    ax1.set_title(title or (
        f"{stats['rows']} descriptions, {stats['aus']} AUs - identifiability "
        f"{stats['identifiability']:.1%}, contamination {stats['contamination']:.1%}, "
        f"distinct-2 {stats['distinct_2']:.2f}"), fontsize=10)
    for xi, r in zip(x, rows):
        ax1.text(xi, r, str(r), ha="center", va="bottom", fontsize=7)
    w = 0.4
    ax2.bar(x - w / 2, ident, w, label="identifiability (nearest centroid is own AU)",
            color="#55a868")
    ax2.bar(x + w / 2, cont, w, label="contamination (names another AU / its muscle)",
            color="#c44e52")
    ax2.axhline(1 / max(len(x), 1), color="grey", ls=":", lw=1, label="chance")
    for xi, v in zip(x, ident):
        if v == v:
            ax2.text(xi - w / 2, v, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    for xi, v in zip(x, cont):
        if v > 0:
            ax2.text(xi + w / 2, v, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    ax2.set_ylim(0, 1.1)
    ax2.set_ylabel("share of the AU's descriptions")
    ax2.set_xticks(x, labels, rotation=60, fontsize=8)
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable summary for the terminal."""
    pct = lambda v: "n/a" if v is None or v != v else f"{v:.1%}"  # noqa: E731
    lines = [
        f"rows {stats['rows']}  AUs {stats['aus']}  LLMs {', '.join(stats['llms'])}",
        f"mean length {stats['mean_words']:.1f} words / {stats['mean_chars']:.0f} chars  "
        f"distinct-1 {stats['distinct_1']:.3f}  distinct-2 {stats['distinct_2']:.3f}",
        f"dedup {stats['dedup']}  kept ratio {pct(stats['dedup_kept_ratio'])}",
        f"filters {stats['filters']}",
        f"AU identifiability {pct(stats['identifiability'])}  "
        f"cross-AU contamination {pct(stats['contamination'])} {stats['contamination_kinds']}",
    ]
    if stats["contamination_top"]:
        lines.append(f"most named: {stats['contamination_top']}")
    for k, v in stats["per_axis"].items():
        lines.append(f"axis {k}: {v}")
    if stats.get("checks"):
        lines.append("rows passing each check (run on every row): "
                     + "  ".join(f"{c} {pct(v)}" for c, v in stats["checks"].items())
                     + f"  all {pct(stats['checks_all'])}  facts: {stats['fact_reasons']}")
    if stats.get("judge"):
        j = stats["judge"]
        lines.append(f"judge: {j['scored']} scored; mean score {j['mean_score_facts_pass']} "
                     f"where the fact checks pass, {j['mean_score_facts_fail']} where they fail; "
                     f"agreement (score ≥ 4 vs pass) {pct(j['agreement'])}")
    lines.append(f"{'AU':>5} {'rows':>6} {'words':>6} {'dist-2':>6} {'ident':>6} {'contam':>6} "
                 f"{'vocab':>6} {'resid':>6} {'repeat':>6} {'facts':>6} {'cue':>6} {'all':>6}")
    for a, p in stats["per_au"].items():
        ch = p.get("checks") or {}
        lines.append(f"{'AU' + str(a):>5} {p['rows']:>6} {p['mean_words']:>6.1f} "
                     f"{p['distinct_2']:>6.2f} {pct(p['identifiability']):>6} "
                     f"{pct(p['contamination']):>6} "
                     + " ".join(f"{pct(ch.get(c)):>6}" for c in
                                ROW_CHECKS)
                     + f" {pct(p.get('checks_all')):>6}  {p['name']}")
    for a, p in stats["per_au"].items():
        for s in p["samples"]:
            lines.append(f"  AU{a}: {s}")
        for s in p.get("failures", []):
            lines.append(f"  AU{a} fails: {s}")
    return "\n".join(lines)
