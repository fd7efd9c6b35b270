"""``hiva train --compile`` (``FoldRun.wrap``: ``torch.compile`` of the whole model): on the CPU's
inductor a compiled HiVA computes what the eager one computes, forward, backward and after an
optimizer step. Compiling takes a minute or more on 2 loaded cores (seconds once inductor's
cache holds it), hence ``slow``."""

from __future__ import annotations

import copy

import pytest
import torch

from hiva.model.hiva import HiVA
from hiva.model.losses import HiVALoss
from hiva.regions import max_discs

RTOL, ATOL = 1e-4, 1e-5  # float32; inductor fuses and reorders reductions


def _step(model, module, opt, loss_fn, images, text, text_mask, regions, targets):
    """``model``: ``module`` itself or compiled."""
    out = model(images, text, text_mask, prior_regions=regions)
    loss, _ = loss_fn(out, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    opt.step()
    return out, loss.detach(), grads


@pytest.mark.slow
def test_a_compiled_hiva_computes_what_the_eager_one_does(toy_cfg, toy_batch):
    """In training mode (BatchNorm batch statistics; no dropout, whose random stream a compiled
    graph draws otherwise), with padded descriptions and both region priors, so every path of
    the attention runs: outputs, loss and every gradient agree to float32 tolerance, and so does
    the next forward after an SGD step on each."""
    cfg = toy_cfg(dropout=0.0, map_prior="both", feature_stride=16)
    images, text, targets = toy_batch(cfg, b=3, m=4)
    text_mask = torch.ones(cfg.num_aus, 4, dtype=torch.bool)
    text_mask[::2, 3] = False
    regions = torch.full((3, cfg.num_aus, max_discs(cfg.aus), 3), float("nan"))
    for i in range(cfg.num_aus):
        regions[:, i, 0] = torch.tensor([10.0 + 3 * i, 12.0 + 2 * i, 10.0])
    eager = HiVA(cfg).train()
    eager.set_region_template(regions[0])
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin)
    loss_fn = HiVALoss(cfg)
    batch = (images, text, text_mask, regions, targets)
    runs = []
    for model, module in ((eager, eager), (compiled, twin)):
        opt = torch.optim.SGD(module.parameters(), lr=0.1)  # moves by the gradient itself
        first = _step(model, module, opt, loss_fn, *batch)
        after = model(images, text, text_mask, prior_regions=regions)  # the same graph again
        runs.append((first, after))
    (e_out, e_loss, e_grads), e_after = runs[0]
    (c_out, c_loss, c_grads), c_after = runs[1]
    for field in ("logits", "activation_maps", "pooling_maps", "visual", "text_proto",
                  "text_attention"):
        torch.testing.assert_close(getattr(c_out, field), getattr(e_out, field), rtol=RTOL,
                                   atol=ATOL, msg=field)
    torch.testing.assert_close(c_loss, e_loss, rtol=RTOL, atol=ATOL)
    assert c_grads.keys() == e_grads.keys() and len(e_grads) > 50
    for name, g in e_grads.items():
        torch.testing.assert_close(c_grads[name], g, rtol=1e-3, atol=1e-5, msg=name)
    torch.testing.assert_close(c_after.logits, e_after.logits, rtol=RTOL, atol=ATOL)
    assert not torch.allclose(e_after.logits, e_out.logits)  # the step moved the model
