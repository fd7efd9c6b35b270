"""Imports sit at the top of a module, where a reader finds them, unless importing inside a
function defers a library: ``hiva --help`` loads typer and hiva's light modules only, and a
command loads torch, pandas, gradio, vllm … when it runs. So an import inside a function is
allowed only when it brings in a third-party library that the module does not already load at
import time (directly or through the hiva modules it imports at the top). A hiva module imported
inside a function must cost such a library; the standard library is never imported lazily. A
planted import that defers nothing fails it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hiva"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
FREE = {"typer"}  # what the command line loads anyway
# Standard modules a function may still import where it runs: ctypes in a forked child only.
STDLIB_LAZY = {"ctypes"}
# A registry's implementations: the one chosen is imported when it is chosen, and no other
# (the LLM backends: a vLLM machine may lack transformers' extras, and the reverse).
IMPLEMENTATIONS = {"hiva.pipeline.backends.transformers_backend",
                   "hiva.pipeline.backends.vllm_backend"}


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for f in root.rglob("*.py"):
        parts = f.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _owner(name: str, mods: dict) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.Import | ast.ImportFrom, mods: dict) -> list[str]:
    """The modules a statement imports (a hiva submodule named in ``from pkg import sub`` as
    itself), or the third-party / standard root."""
    if isinstance(node, ast.ImportFrom):
        return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                for a in node.names]
    return [a.name for a in node.names]


def top_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run at import time: the module's body, and inside its top-level if/try/with
    blocks and class bodies (``if TYPE_CHECKING:`` excepted)."""
    out = []

    def visit(body):
        for n in body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                out.append(n)
            elif isinstance(n, ast.ClassDef):
                visit(n.body)
            elif isinstance(n, (ast.If, ast.Try, ast.With)):
                if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING":
                    continue
                for part in ("body", "orelse", "finalbody"):
                    visit(getattr(n, part, []) or [])
                for h in getattr(n, "handlers", []) or []:
                    visit(h.body)

    visit(tree.body)
    return out


class Costs:
    """The third-party libraries importing each hiva module loads (its parents' included)."""

    def __init__(self, mods: dict[str, Path]):
        self.mods, self.memo = mods, {}
        self.trees = {m: ast.parse(p.read_text()) for m, p in mods.items()}

    def __call__(self, m: str, seen: frozenset = frozenset()) -> set[str]:
        if m in self.memo:
            return self.memo[m]
        if m in seen:
            return set()
        seen = seen | {m}
        out: set[str] = set()
        bits = m.split(".")
        for i in range(1, len(bits)):
            if ".".join(bits[:i]) in self.mods:
                out |= self(".".join(bits[:i]), seen)
        for node in top_level(self.trees[m]):
            if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
                continue
            for t in _targets(node, self.mods):
                root = t.split(".")[0]
                if root == "hiva":
                    owner = _owner(t, self.mods)
                    out |= self(owner, seen) if owner else set()
                elif root not in STDLIB and root not in FREE:
                    out.add(root)
        self.memo[m] = out
        return out


def lazy_for_nothing(root: Path = ROOT) -> list[str]:
    mods = modules(root)
    cost = Costs(mods)
    bad = []
    for m, path in sorted(mods.items()):
        mine = cost(m)
        for fn in ast.walk(cost.trees[m]):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if fn.name == "__getattr__":  # a package's lazy attribute (hiva.Detector)
                continue
            for node in ast.walk(fn):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
                    continue
                for t in _targets(node, mods):
                    root_name = t.split(".")[0]
                    if root_name == "hiva":
                        owner = _owner(t, mods)
                        gain = cost(owner) - mine if owner else set()
                        if owner in IMPLEMENTATIONS:
                            gain = {owner}
                    elif root_name in STDLIB:
                        gain = {root_name} & STDLIB_LAZY
                    else:
                        gain = {root_name} - mine
                    if not gain:
                        where = path.relative_to(root.parent).as_posix()
                        bad.append(f"{where}:{node.lineno} imports {t} inside {fn.name}(); "
                                   "it defers no library: move it to the top")
    return bad


def test_imports_inside_functions_defer_a_library():
    bad = lazy_for_nothing()
    assert not bad, "\n".join(bad)


def test_a_planted_lazy_import_fails(tmp_path):
    pkg = tmp_path / "hiva"
    (pkg / "train").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("class HivaError(Exception):\n    pass\n")
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "heavy.py").write_text("import torch\n")
    (pkg / "train" / "run.py").write_text(
        "import numpy as np\n\n"
        "def f():\n    from hiva.errors import HivaError\n    import json\n"
        "    import numpy\n    return HivaError, json, numpy, np\n\n"
        "def g():\n    import torch\n    from hiva.train.heavy import torch as t\n"
        "    return torch, t\n")
    bad = lazy_for_nothing(pkg)
    assert [b.split(" inside")[0] for b in bad] == [
        "hiva/train/run.py:4 imports hiva.errors", "hiva/train/run.py:5 imports json",
        "hiva/train/run.py:6 imports numpy"]
