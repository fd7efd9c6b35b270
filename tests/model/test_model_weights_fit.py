"""hiva.model.factory.check_fit / fitting: the one "do these weights fit this model" rule that
run checkpoints, timm backbone weights, imported ME-GraphAU checkpoints and ``init_from`` share."""

from __future__ import annotations

import pytest
import torch

from hiva.errors import HivaError
from hiva.model.factory import check_fit, fitting

OWN = {"a.weight": torch.zeros(3, 2), "a.bias": torch.zeros(3), "b.weight": torch.zeros(4)}


def test_matching_weights_fit():
    check_fit(OWN, {k: torch.ones_like(v) for k, v in OWN.items()}, "w do not fit M", "fix")
    assert fitting(OWN, OWN) == OWN


def test_missing_and_unexpected_keys_are_named():
    state = {"a.weight": torch.zeros(3, 2), "c.extra": torch.zeros(1)}
    with pytest.raises(HivaError) as e:
        check_fit(OWN, state, "weights from f.pt do not fit M", "pass the right weights")
    assert str(e.value) == ("weights from f.pt do not fit M: missing a.bias, b.weight; "
                            "unexpected c.extra; pass the right weights")
    assert list(fitting(OWN, state)) == ["a.weight"]


def test_a_wrong_shape_is_named_with_both_shapes():
    state = {**OWN, "a.weight": torch.zeros(2, 2)}
    with pytest.raises(HivaError, match=r"^ck does not fit: wrong shape a\.weight \(a\.weight: "
                                        r"\(2, 2\), the model's \(3, 2\)\); fix$"):
        check_fit(OWN, state, "ck does not fit", "fix")
    assert "a.weight" not in fitting(OWN, state) and len(fitting(OWN, state)) == 2


def test_callers_name_the_keys_their_way():
    with pytest.raises(HivaError) as e:
        check_fit(OWN, {}, "it does not fit", "check --arch",
                  labels=("model tensors nothing fills:", "mapped keys the model lacks:"),
                  more=("keys of the checkpoint that map nowhere: x",))
    assert str(e.value) == ("it does not fit: keys of the checkpoint that map nowhere: x; model "
                            "tensors nothing fills: a.bias, a.weight, b.weight; check --arch")
