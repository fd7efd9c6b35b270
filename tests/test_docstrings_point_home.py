"""Docstrings and comments point only at files in this repository: every ``docs/…``,
``benchmarks/…``, ``configs/…`` or ``hiva/…`` path named in hiva's source exists, and none points
at a design folder outside it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"\b((?:docs|benchmarks|configs|hiva|tests)/[\w./-]*\w)")


def test_named_repo_files_exist():
    missing = []
    for f in sorted((ROOT / "hiva").rglob("*.py")):
        text = f.read_text()
        assert "shared/design" not in text, f"{f.relative_to(ROOT)} points outside the repo"
        for m in PATH.finditer(text):
            name = m.group(1)
            if "*" in name or "{" in name or "<" in name:
                continue
            if not (ROOT / name).exists():
                missing.append(f"{f.relative_to(ROOT)}: {name}")
    assert not missing, "named files that do not exist:\n" + "\n".join(missing)
