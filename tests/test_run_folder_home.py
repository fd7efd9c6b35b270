"""``hiva.runs`` is the one place that spells the file names of a run folder and of an export
folder: no other module of hiva writes one as a string (docstrings and comments aside), nor builds
a fold folder's name (``f"fold{k}"``). A planted name fails it."""

from __future__ import annotations

import ast
from pathlib import Path

import hiva.runs as runs

ROOT = Path(__file__).resolve().parents[1] / "hiva"
HOME = ROOT / "runs.py"
# Names a run or export folder shares with other folders hiva reads or writes, and the modules
# where they name those other folders: the config.yaml of a dataset, an alignment, a text bank,
# a corpus or a shard launch; a Hugging Face model folder's config.json; a dataset's README.md.
SHARED = {
    runs.RUN_CONFIG: {"data/synth.py", "data/align.py", "textbank/bundle.py", "corpora/hub.py",
                      "corpora/schema.py", "pipeline/shards.py"},
    runs.EXPORT_INFO: {"pipeline/backends/base.py", "pipeline/backends/gguf.py",
                       "model/clip.py"},
    runs.EXPORT_CARD: {"corpora/hub.py", "corpora/io.py", "data/synth.py"},
}
# Constants of hiva.runs that are words other code uses for other things (a config key).
NOT_NAMES = {runs.EXPORT_BANK, runs.TENSORBOARD, runs.EXPORT_FORMAT}


def names() -> set[str]:
    out = {v for k, v in vars(runs).items() if k.isupper() and isinstance(v, str)}
    out |= {f"{w}.safetensors" for w in runs.WEIGHTS}
    out |= {runs.EVALUATE_METRICS.format(tag=""), runs.EVALUATE_PREDICTIONS.split("}")[-1]}
    return out - NOT_NAMES


def strings(tree: ast.AST) -> list[tuple[str, int]]:
    """Every string in the code (not docstrings), with its line; a fold folder's f-string as
    ``fold{`` (``f"fold{k}"``; not ME-GraphAU's list names, ``f"..._fold{k}.txt"``)."""
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.value, node.lineno))
        elif isinstance(node, ast.JoinedStr):
            for a, b in zip(node.values, node.values[1:]):
                if isinstance(a, ast.Constant) and isinstance(b, ast.FormattedValue) and \
                        (a.value == "fold" or str(a.value).endswith("/fold")):
                    out.append(("fold{", node.lineno))
    return out


def offences(root: Path = ROOT) -> list[str]:
    wanted = names() | {"fold{"}
    bad = []
    for f in sorted(root.rglob("*.py")):
        if f == HOME:
            continue
        rel = f.relative_to(root).as_posix()
        for s, line in strings(ast.parse(f.read_text())):
            for name in wanted:
                if name in s and rel not in SHARED.get(name, ()):
                    bad.append(f"hiva/{rel}:{line} spells {name!r}: use hiva.runs")
    return bad


def test_no_run_folder_name_outside_runs():
    assert offences() == []


def test_a_planted_name_fails(tmp_path):
    pkg = tmp_path / "hiva"
    pkg.mkdir()
    (pkg / "report.py").write_text('"""Reads metrics.json (a docstring may say so)."""\n'
                                   'def f(d, k):\n    return d / f"fold{k}" / "metrics.json"\n')
    got = offences(pkg)
    assert any("'metrics.json'" in b for b in got) and any("'fold{'" in b for b in got)
    assert all(":3 " in b for b in got)  # the docstring on line 1 is not an offence


def test_names_cover_the_layout():
    n = names()
    for name in ("config.yaml", "metrics.json", "best.safetensors", "last.safetensors",
                 "test_predictions.parquet", "model.safetensors", "train_config.yaml",
                 "sweep.json", "train.log"):
        assert name in n


def test_a_cut_metrics_file_is_one_line(tmp_path):
    """``hiva report RUN`` on a run whose metrics.json was cut: a HivaError naming the file and
    the fix (it was a JSONDecodeError traceback)."""
    import pytest

    from hiva.errors import HivaError
    from hiva.train.report import load_summary

    (tmp_path / runs.METRICS).write_text('{"folds": {"1": {"te')
    with pytest.raises(HivaError, match="does not parse.*retrain"):
        load_summary(tmp_path)
    assert runs.fold_metrics(tmp_path) == {}  # the lenient reader (a fold still training)
