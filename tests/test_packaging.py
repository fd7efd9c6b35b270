"""What the installed package carries and prints: its version, its data files, the training
recipes it ships (``--config demo`` without a checkout). The wheel itself is installed and run in a
fresh venv by ``.ci/wheel-check`` (``make wheel-check``), outside pytest."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

import hiva
from hiva.config import SHIPPED_CONFIGS, load_config, resolve_config, shipped_configs
from hiva.errors import HivaError
from hiva.train.config import TrainConfig
from tests.helpers import invoke, run_cli

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hiva"


def test_version_prints_and_exits_zero():
    r = run_cli("--version")
    assert r.stdout.strip() == f"hiva {hiva.__version__}"
    code, out = invoke("--version")  # no command needed, nothing else runs
    assert code == 0 and out.strip() == f"hiva {hiva.__version__}"


def test_package_data_covers_every_data_file():
    """A template, recipe or other non-Python file under hiva/ that pyproject's package-data does
    not list would be missing from the wheel (setuptools expands the patterns with glob)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = meta["tool"]["setuptools"]
    assert tool["dynamic"]["version"] == {"attr": "hiva.__version__"}
    covered = {os.path.normpath(p) for pat in tool["package-data"]["hiva"]
               for p in glob.glob(str(PKG / pat), recursive=True)}
    data = {os.path.normpath(str(p)) for p in PKG.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert data, "no data files found under hiva/"
    assert data <= covered, f"left out of the wheel: {sorted(data - covered)}"
    assert (SHIPPED_CONFIGS / "demo.yaml").is_file() and (SHIPPED_CONFIGS / "bp4d.yaml").is_file()


def test_checkout_configs_link_to_the_shipped_recipes():
    for name in shipped_configs():
        assert (ROOT / "configs" / f"{name}.yaml").resolve() == (SHIPPED_CONFIGS /
                                                                  f"{name}.yaml").resolve()


def test_config_by_recipe_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: what a pip user has
    assert resolve_config("demo") == SHIPPED_CONFIGS / "demo.yaml"
    assert load_config(TrainConfig, "demo") == load_config(TrainConfig,
                                                           SHIPPED_CONFIGS / "demo.yaml")
    # a file of that name in the working folder wins; a path-like name is never a recipe
    (tmp_path / "demo").write_text("epochs: 3\n")
    assert load_config(TrainConfig, "demo").epochs == 3
    assert resolve_config("sub/demo") == Path("sub/demo")
    assert resolve_config("demo.yaml") == Path("demo.yaml")


@pytest.mark.parametrize("name", ["nosuch", "nosuch.yaml"])
def test_unknown_config_names_the_recipes(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HivaError, match=r"does not exist; .*recipe hiva ships \(bp4d, demo"):
        load_config(TrainConfig, name)
