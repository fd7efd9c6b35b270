"""The package's import layering, checked on every ``import`` of a hiva module, inside functions
too (an AST walk): each part of hiva imports only the parts below it (``ALLOWED``), and no two
modules import each other, directly or around a loop. A planted upward import fails it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hiva"

# What the foundations may use; every part may use these.
BASE = {"errors", "runtime", "config", "hub", "facs", "facs_table"}
# Each part of hiva (a top-level module or package) → the parts it may import, besides itself
# and BASE. Read bottom-up: errors ← runtime ← config; facs ← movements, regions ← text_regions;
# runs (the run and export folders); jobs (the local and Slurm launchers); textbank, data, model;
# corpora ← pipeline; train, predict ← app ← cli.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "runtime": set(),
    "config": set(),
    "hub": set(),
    "facs": set(),
    "facs_table": set(),
    "movements": set(),
    "regions": set(),
    "text_regions": {"movements", "regions"},
    "runs": set(),
    "jobs": set(),
    "prompts": set(),
    "textbank": set(),
    "data": {"movements", "regions", "text_regions"},
    "model": {"regions", "text_regions"},
    "corpora": {"textbank", "movements", "prompts", "hiva"},
    "pipeline": {"corpora", "textbank", "prompts", "movements", "jobs", "hiva"},
    "train": {"data", "model", "textbank", "regions", "text_regions", "runs", "jobs", "hiva"},
    "predict": {"data", "model", "textbank", "regions", "corpora", "runs", "hiva"},
    "app": {"predict", "corpora", "textbank", "data", "model", "regions", "runs", "hiva"},
    "cli": None,  # the command line's edge: it may reach everything
    "hiva": {"predict"},  # hiva/__init__.py: `hiva.Detector`, loaded lazily from predict
}
FOUNDATIONS = {"errors": set(), "runtime": {"errors"}, "config": {"errors", "runtime"},
               "hub": {"errors", "runtime"}, "facs": {"errors", "facs_table"},
               "facs_table": set()}
# The one torch-free configuration module of a higher part that a lower part may read: a run's
# TrainConfig, which predict restores a model from (train and predict never import each other).
SHARED_CONFIGS = {"hiva.train.config"}


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def imports(path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported hiva module, line) for every import in ``path``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] == "hiva":
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((full if full in known else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "hiva"]
    return out


def part(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "hiva"


def violations(mods: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in mods.items():
        src = part(name)
        allowed = ALLOWED[src]
        if allowed is None:
            continue
        ok = FOUNDATIONS[src] if src in FOUNDATIONS else BASE | allowed
        for target, line in imports(path, set(mods)):
            dst = part(target)
            if dst == src or dst in ok or target in SHARED_CONFIGS:
                continue
            where = path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path
            bad.append(f"{where}:{line} ({src}) imports {target} ({dst})")
    return bad


def cycles(mods: dict[str, Path]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), package __init__ lazy
    re-exports aside."""
    graph = {m: {t for t, _ in imports(p, set(mods)) if t in mods and t != m}
             for m, p in mods.items()}
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_part_is_in_the_contract():
    assert {part(m) for m in modules()} <= set(ALLOWED)


def test_no_import_reaches_up():
    bad = violations(modules())
    assert not bad, "imports against the layering (tests/test_layering.py):\n" + "\n".join(bad)


def test_no_import_cycles():
    mods = {m: p for m, p in modules().items()
            if not (p.name == "__init__.py" and part(m) in ("hiva", "predict"))}
    assert not cycles(mods)


def test_a_planted_upward_import_fails(tmp_path):
    mods = modules()
    planted = tmp_path / "regions.py"
    planted.write_text(mods["hiva.regions"].read_text()
                       + "\n\ndef _x():\n    from hiva.train.trainer import Trainer\n")
    assert any("hiva.train.trainer" in v
               for v in violations({**mods, "hiva.regions": planted}))


@pytest.mark.parametrize("src", sorted(ALLOWED))
def test_the_contract_names_no_part_twice(src):
    allowed = ALLOWED[src] or set()
    assert src not in allowed and not (allowed & set(FOUNDATIONS)) - {"hiva"}
