"""Rewrite one generated section of README.md from a file: the lines between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` become the file's content (``make ablations``
writes the ablation table this way, so the README shows what the committed sweep measured).

    python benchmarks/readme_section.py ablations out/ablations/report.md
    python benchmarks/readme_section.py language5 out/language/report5.md --summary

``--summary`` keeps a ``hiva report`` table without its per-AU part.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    name, source = sys.argv[1], Path(sys.argv[2])
    summary = "--summary" in sys.argv[3:]
    text = README.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        sys.exit(f"README.md has no {start} ... {end} markers; add them where the section goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = source.read_text().strip()
    if summary:
        body = body.split("\nPer-AU")[0].strip()
    README.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    print(f"README.md: section {name} rewritten from {source}")


if __name__ == "__main__":
    main()
