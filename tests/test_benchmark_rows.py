"""benchmarks/speed.py's KgCoOp and ProGrad rows compute what the authors' computation computes: same
logits, and the same update of the context from the same start."""

import pytest
import torch

from benchmarks import cases, speed


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


@pytest.mark.parametrize("trainer", ["CLIP_Adapter", "Tip_Adapter_F", "CLIP_LoRA", "MultiModalAdapter"])
def test_adapter_rows_compute_the_authors_logits_and_update(trainer):
    """CLIP-Adapter, Tip-Adapter-F, CLIP-LoRA, MMA: the reference (the authors' computation) and ours give
    the same logits in eval and the same learned values after one SGD step from the same start, dropout off
    (ours trims the text, so CLIP-LoRA's masks could not be the same draws; MMA's update includes the
    authors' gradient rescaling)."""
    row = cases.first_case(trainer)
    assert row.build.__module__ in ("benchmarks.speed_adapters", "benchmarks.speed_mma")
    assert_same_logits_and_update(row, lambda m: (speed.ce_step(m), speed.ce_step(lambda x: row.reference(m, x))))


@pytest.mark.parametrize("trainer", ["TCP", "ExtrasLinearProbeCoOp", "ExtrasLinearProbeCoCoOp"])
def test_tcp_and_dept_rows_compute_the_authors_logits_and_update(trainer):
    """TCP and DePT (on CoOp, on CoCoOp): the trainer's own evaluation and loss terms against the
    authors' computation (77 positions, their loss written out): same logits, same update of every
    learned parameter (TCP's Meta-Net, DePT's head and FiLMs too)."""
    row = cases.first_case(trainer)
    assert row.build.__module__ == "benchmarks.speed_tcp_dept"
    assert_same_logits_and_update(row, lambda m: (row.step, row.reference_step))


def assert_same_logits_and_update(row, steps):
    """steps(model) -> (our training step, the reference's), each step(model, images, labels, optim)."""
    torch.manual_seed(0)
    clip = speed.build_clip(tiny=True, prec="fp32", device=torch.device("cpu"))
    model = row.build(clip, speed.CLASSNAMES[:5])
    images, labels = torch.randn(2, 3, 224, 224), torch.tensor([0, 3])
    model.eval()
    with torch.no_grad():
        assert (row.reference(model, images) - model(images)).abs().max().item() < 1e-4
    learned = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in learned]
    after = {}
    model.train()
    for dropout in (m for m in model.modules() if isinstance(m, torch.nn.Dropout)):
        dropout.p = 0.0
    for name, step in zip(("ours", "reference"), steps(model)):
        with torch.no_grad():
            for p, s in zip(learned, start):
                p.copy_(s)
        step(model, images, labels, torch.optim.SGD(learned, lr=1e-2))
        after[name] = [p.detach().clone() for p in learned]
    assert all(not torch.equal(a, s) for a, s in zip(after["ours"], start))
    for ours, reference in zip(after["ours"], after["reference"]):
        torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-4)
