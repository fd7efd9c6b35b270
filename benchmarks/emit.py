"""What the benchmark scripts end with: print a Markdown table and, when asked, write it."""

from __future__ import annotations

from pathlib import Path


def emit(text: str, markdown: Path | None) -> None:
    """Print ``text``; write it (with a final newline) to ``markdown`` when one is given."""
    print(text)
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text + "\n")
