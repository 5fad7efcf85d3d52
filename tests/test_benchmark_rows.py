"""benchmarks/speed.py's KgCoOp and ProGrad rows compute what the authors' computation computes: same
logits, and the same update of the context from the same start."""

import pytest
import torch

from benchmarks import speed


@pytest.mark.parametrize("case", [speed.kgcoop_case(2, 5), speed.prograd_case(2, 5)], ids=["KgCoOp", "ProGrad"])
def test_our_step_equals_the_reference_step(case):
    torch.manual_seed(0)
    clip = speed.build_clip(tiny=True, prec="fp32", device=torch.device("cpu"))
    model = case.build(clip, speed.CLASSNAMES[: case.classes])
    images, labels = torch.randn(2, 3, 224, 224), torch.tensor([0, 3])
    with torch.no_grad():
        diff = (case.reference(model, images) - model(images)).abs().max().item()
    assert diff < 1e-4
    ctx = model.prompt_learner.ctx
    start = ctx.detach().clone()
    after = {}
    for name, step in (("ours", case.step), ("reference", case.reference_step)):
        ctx.data.copy_(start)
        optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        step(model, images, labels, optim)
        after[name] = ctx.detach().clone()
    assert not torch.equal(after["ours"], start)
    torch.testing.assert_close(after["ours"], after["reference"], atol=1e-6, rtol=1e-4)
