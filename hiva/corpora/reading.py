"""A reading of a corpus (``hiva corpus stats --read N``): N rows drawn with a seed, each printed
with the verifier's verdict on every clause, the way a FACS coder reads them.

The verdicts are the verifier's (``hiva.corpora.verify``), not a person's: the reading is the
worksheet a person marks, and the figures it ends with say what the verifier thinks of the same
rows. docs/results/descriptions.md reports readings marked by hand.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from hiva.corpora.verify import verify
from hiva.facs import AUS

if TYPE_CHECKING:
    import pandas as pd

_MARK = {"verified": "✓", "harmless": "·"}


def read_rows(df: pd.DataFrame, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows of ``df`` (all of them when it has fewer) drawn without replacement with
    ``seed``, in the drawn order, each with its verification."""
    import numpy as np

    pick = np.random.default_rng(seed).permutation(len(df))[:n]
    out = []
    for i in pick:
        row = df.iloc[int(i)]
        au, text = int(row["au"]), str(row["text"])
        v = verify(text, au) if au in AUS else None
        out.append({
            "row_id": str(row["row_id"]) if "row_id" in df else str(i),
            "au": au, "text": text,
            "verdict": "not in the FACS table" if v is None else (v.reason or "kept"),
            "why": "" if v is None else v.why,
            "cue": None if v is None else v.cue,
            "clauses": [] if v is None else [
                {"text": c.text, "verdict": c.verdict, "why": c.why} for c in v.clauses],
        })
    return out


def format_reading(rows: list[dict[str, Any]], seed: int) -> str:
    """The rows as a worksheet, then the verifier's tally."""
    lines = [f"reading of {len(rows)} rows (seed {seed}); ✓ verified, · harmless, ✗ fails"]
    for k, r in enumerate(rows, 1):
        name = AUS[r["au"]].name if r["au"] in AUS else "?"
        cue = f"cue: {r['cue']}" if r["cue"] else "no distinguishing cue"
        lines.append(f"\n[{k:>2}/{len(rows)}] AU{r['au']} {name}: {r['verdict']} ({cue})")
        lines.append(f"  {r['text']}")
        for c in r["clauses"]:
            mark = _MARK.get(c["verdict"], "✗")
            tail = f"  ({c['why']})" if c["why"] else ""
            verdict = "" if mark in "✓·" else f"{c['verdict']}: "
            lines.append(f"    {mark} {verdict}{c['text']}{tail}")
    tally = Counter(r["verdict"] for r in rows)
    kept = tally.pop("kept", 0)
    n = max(len(rows), 1)
    with_cue = sum(bool(r["cue"]) for r in rows)
    lines.append(f"\nverifier: {kept}/{len(rows)} kept ({kept / n:.0%}); "
                 f"{with_cue}/{len(rows)} use a distinguishing cue; "
                 + ", ".join(f"{k} {v}" for k, v in tally.most_common()))
    return "\n".join(lines)
