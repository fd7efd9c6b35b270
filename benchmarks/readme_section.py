"""Rewrite one generated section of a write-up (``--doc FILE``, default README.md) from a file:
the lines between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` become the file's content
(``make benchmark`` and ``make language`` write docs/results/ this way, so the write-ups show
what the committed sweeps measured).

    python benchmarks/readme_section.py benchmark out/bench/summary.md \
        --doc docs/results/benchmark.md
    python benchmarks/readme_section.py language5 out/language/report5.md --summary \
        --doc docs/results/round2-emotions-set.md

``--summary`` keeps a ``hiva report`` table without its per-AU part.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name")
    ap.add_argument("source", type=Path)
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--doc", type=Path, default=README)
    args = ap.parse_args()
    name, source, summary, doc = args.name, args.source, args.summary, args.doc
    text = doc.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        sys.exit(f"{doc} has no {start} ... {end} markers; add them where the section goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = source.read_text().strip()
    if summary:
        body = body.split("\nPer-AU")[0].strip()
    doc.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    print(f"{doc}: section {name} rewritten from {source}")


if __name__ == "__main__":
    main()
