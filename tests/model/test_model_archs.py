"""The architecture registry (``hiva.model.archs``): each arch declares how it is built, whether
it reads text and what it logs, nothing outside the registry branches on ``model.arch``, and a
third architecture is one ``register`` call."""

import re
from pathlib import Path

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.archs import ARCHS, Arch, build_arch_loss, get_arch, register
from hiva.model.config import ModelConfig
from hiva.model.factory import build_model

ROOT = Path(__file__).resolve().parents[2] / "hiva"


class Tiny(torch.nn.Module):
    def __init__(self, mc):
        super().__init__()
        self.fc = torch.nn.Linear(3, len(mc.aus))


class TinyLoss:
    def __init__(self, mc, au_weights=None):
        self.n = len(mc.aus)


def test_no_branch_on_arch_outside_the_registry():
    pat = re.compile(r"""\barch\b["')\]]*\s*(==|!=|\bin\b)|get\(["']arch["']\)\s*(==|!=)""")
    hits = [f"{f.relative_to(ROOT.parent)}:{i}" for f in ROOT.rglob("*.py")
            if f.name != "archs.py"
            for i, line in enumerate(f.read_text().splitlines(), 1) if pat.search(line)]
    assert not hits, hits


def test_the_two_archs_declare_what_differs():
    hiva, graph = get_arch("hiva"), get_arch("megraphau")
    assert hiva.reads_text and not graph.reads_text
    assert (hiva.maps, graph.maps) == ("attention", "feature energy")
    assert graph.extra_loss_terms == ("edge",) and graph.side_outputs and not hiva.side_outputs
    with pytest.raises(HivaError, match="map_prior applies to arch hiva"):
        ModelConfig(aus="bp4d", arch="megraphau", pretrained=None, map_prior="kl")
    with pytest.raises(HivaError, match="side_aus .* need arch megraphau"):
        ModelConfig(aus="bp4d", pretrained=None, side_aus=(1, 2))
    with pytest.raises(HivaError, match="arch 'nope' is not one of hiva, megraphau"):
        get_arch("nope")


def test_a_third_arch_is_one_register_call():
    register(Arch(name="tiny", title="Tiny", network=f"{__name__}:Tiny",
                  loss=f"{__name__}:TinyLoss", reads_text=False, maps="feature energy",
                  describe=lambda mc: "three inputs"))
    try:
        mc = ModelConfig(aus="bp4d", arch="tiny", backbone="resnet18", pretrained=None)
        model = build_model(mc, "cpu", channels_last=False)
        assert isinstance(model, Tiny) and model.fc.out_features == 12
        assert build_arch_loss(mc).n == 12
    finally:
        ARCHS.pop("tiny")
    with pytest.raises(HivaError, match="arch='tiny' is not one of"):
        ModelConfig(aus="bp4d", arch="tiny", pretrained=None)
