"""KgCoOp's knowledge-guided term and ProGrad's projected gradient against direct computations; what
learns; the authors' prompt initialisation, RNG draws and checkpoints."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from coop_toolkit.trainers.clip_backbone import TextEncoder, load_clip
from coop_toolkit.trainers.kgcoop import KgCoOp
from coop_toolkit.trainers.prograd import ProGrad, project_conflicting
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of, make_cfg

NO_MOMENTUM = {
    "OPTIM.NAME": "sgd",
    "OPTIM.MOMENTUM": 0.0,
    "OPTIM.WEIGHT_DECAY": 0.0,
    "OPTIM.WARMUP_EPOCH": 0,
    "OPTIM.LR": 1.0,
}


def cfg_for(path, **opts):
    return make_cfg(path, **{"DATASET.NAME": "OxfordPets", "LOSS.NAME": "prograd", **opts})


def full_text_features(model):
    """The authors' text pass: all 77 positions, then L2-normalised."""
    encoder = TextEncoder.__new__(TextEncoder)
    encoder.__dict__.update(model.text_encoder.__dict__)
    encoder.trim = False
    pl = model.prompt_learner
    features = encoder(pl(), pl.token_ids)
    return features / features.norm(dim=-1, keepdim=True)


def handwritten(path, template):
    clip = load_clip(path)
    with torch.no_grad():
        f = clip.encode_text(tokenize([template.format(c.replace("_", " ")) for c in CLASSNAMES]))
    return f / f.norm(dim=-1, keepdim=True)


@pytest.fixture(scope="module")
def kgcoop(tiny_clip_path):
    torch.manual_seed(0)
    return bare_trainer(KgCoOp, cfg_for(tiny_clip_path, **{"TRAINER.COOP.CTX_INIT": True, "TRAINER.COOP.W": 8.0}))


def test_kgcoop_loss_is_ce_plus_w_times_one_minus_mean_cosine(kgcoop, tiny_clip_path):
    batch = batch_of()
    output = kgcoop.forward_train(batch["img"])
    losses = kgcoop.compute_losses(output, batch["label"])
    model = kgcoop.model
    image = model.image_encoder(batch["img"])
    image = image / image.norm(dim=-1, keepdim=True)
    text = full_text_features(model)
    logits = model.logit_scale.exp() * image @ text.t()
    knowledge = handwritten(tiny_clip_path, "a photo of a {}, a type of pet.")  # KgCoOp's OxfordPets template
    torch.testing.assert_close(losses["ce"], F.cross_entropy(logits, batch["label"]), atol=1e-5, rtol=1e-5)
    expected = 8.0 * (1 - (text * knowledge).sum(-1).mean())
    torch.testing.assert_close(losses["kg"], expected, atol=1e-5, rtol=1e-5)
    assert losses["kg"] > 0


def test_kgcoop_learns_only_ctx_and_keeps_the_authors_state_dict(kgcoop):
    pl = kgcoop.model.prompt_learner
    assert list(pl.state_dict()) == [
        "ctx",
        "bias_vectors",
        "token_prefix",
        "token_suffix",
        "meta_net.linear1.weight",
        "meta_net.linear1.bias",
    ]
    assert pl.ctx.shape == (4, 64)  # CTX_INIT True: "a photo of a", whatever N_CTX says
    before = {k: v.clone() for k, v in kgcoop.model.state_dict().items()}
    summary = kgcoop.forward_backward(batch_of(seed=3))
    assert summary.keys() == {"loss", "ce", "kg", "acc"}
    assert summary["loss"] == pytest.approx(summary["ce"] + summary["kg"], rel=1e-5)
    changed = {k for k, v in kgcoop.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"prompt_learner.ctx"}
    assert {n for n, p in kgcoop.model.named_parameters() if p.grad is not None} == {"prompt_learner.ctx"}


def test_kgcoop_draws_from_the_rng_as_the_authors_build(tiny_clip_path):
    torch.manual_seed(5)
    bare_trainer(KgCoOp, cfg_for(tiny_clip_path, **{"TRAINER.COOP.N_CTX": 4}))
    ours = torch.get_rng_state()
    torch.manual_seed(5)
    load_clip(tiny_clip_path)  # CLIP
    nn.init.normal_(torch.empty(4, 64), std=0.02)  # ctx
    nn.init.normal_(torch.empty(1, 512), std=0.02)  # bias_vectors
    load_clip(tiny_clip_path)  # the second CLIP, for the hand-written features
    nn.Linear(512, 512)  # meta_net
    nn.Linear(512, 128, bias=False), nn.Linear(128, 512, bias=False)  # the unused adapter
    assert torch.equal(ours, torch.get_rng_state())


@pytest.fixture(scope="module")
def prograd(tiny_clip_path):
    torch.manual_seed(0)
    cfg = cfg_for(tiny_clip_path, **{"TRAINER.COOP.CTX_INIT": True, "LOSS.T": 2.0, "LOSS.LAMBDA": 0.8, **NO_MOMENTUM})
    return bare_trainer(ProGrad, cfg)


def test_project_conflicting_removes_lambda_of_the_opposing_component():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, -1.0]])
    torch.testing.assert_close(project_conflicting(a, b, 1.0), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(project_conflicting(a, b, 0.5), torch.tensor([[1.0, 1.0]]))
    assert torch.equal(project_conflicting(a, -b, 1.0), a)  # no conflict: the plain gradient


def test_prograd_steps_along_the_projected_cross_entropy_gradient(prograd, tiny_clip_path):
    batch = batch_of(seed=7)
    model, ctx = prograd.model, prograd.model.prompt_learner.ctx
    start = ctx.detach().clone()
    # direct: the authors' losses, the student against zero-shot CLIP with ProGrad's OxfordPets template
    image = model.image_encoder(batch["img"])
    image = image / image.norm(dim=-1, keepdim=True)
    logits = model.logit_scale.exp() * image @ full_text_features(model).t()
    teacher = model.logit_scale.exp() * image @ handwritten(tiny_clip_path, "a type of pet, a photo of a {}.").t()
    xe = F.cross_entropy(logits, batch["label"])
    kl = (-F.softmax(teacher / 2.0, -1) * F.log_softmax(logits / 2.0, -1) * 4.0).sum(1).mean()
    g_xe, g_kl = (torch.autograd.grad(loss, ctx, retain_graph=True)[0] for loss in (xe, kl))
    unit = g_kl / g_kl.norm()
    assert (g_xe * unit).sum() < 0  # this batch's gradients conflict: the projection is exercised
    expected = g_xe - 0.8 * (g_xe * unit).sum() * unit

    summary = prograd.forward_backward(batch)
    assert summary.keys() == {"xe_loss", "kl_loss", "acc"}
    assert summary["xe_loss"] == pytest.approx(xe.item(), rel=1e-5)
    assert summary["kl_loss"] == pytest.approx(kl.item(), rel=1e-5)
    torch.testing.assert_close(start - ctx.detach(), expected, atol=1e-4, rtol=1e-3)  # SGD, LR 1, no momentum
    assert {n for n, p in model.named_parameters() if p.grad is not None} == {"prompt_learner.ctx"}


def test_prograd_initial_context_is_the_authors(tiny_clip_path):
    prograd = bare_trainer(ProGrad, cfg_for(tiny_clip_path, **{"TRAINER.COOP.CTX_INIT": True}))
    clip = load_clip(tiny_clip_path)
    words = "a type of pet, a photo of a"  # 8 words, 9 BPE tokens (the comma is one)
    with torch.no_grad():
        emb = clip.token_embedding(tokenize([words]))[0]
        full = clip.token_embedding(tokenize(["X " * 8 + words + " " + "beagle."]))[0]
    pl = prograd.model.prompt_learner
    assert pl.ctx.shape == (16, 64)
    assert torch.equal(pl.ctx.data[:8], torch.zeros(8, 64))
    torch.testing.assert_close(pl.ctx.data[8:], emb[1:9])
    torch.testing.assert_close(pl.token_suffix[2], full[17:])  # starts with the last "a": the authors' quirk


def test_prograd_draws_from_the_rng_as_the_authors_build(tiny_clip_path):
    torch.manual_seed(5)
    bare_trainer(ProGrad, cfg_for(tiny_clip_path))
    ours = torch.get_rng_state()
    torch.manual_seed(5)
    load_clip(tiny_clip_path)  # the student's CLIP
    load_clip(tiny_clip_path)  # the teacher's
    nn.init.normal_(torch.empty(16, 64), std=0.02)  # ctx
    assert torch.equal(ours, torch.get_rng_state())


def authors_checkpoint(directory, state_dict, epoch=5):
    """A file as the authors' Dassl fork writes it: no "meta", the warm-up scheduler pickling its successor."""
    ctx = state_dict["ctx"]
    optim = torch.optim.SGD([nn.Parameter(ctx.clone())], lr=0.002)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optim, 10.0)
    scheduler = {"successor": successor, "warmup_epoch": 1, "cons_lr": 1e-5, "last_epoch": epoch}
    folder = directory / "prompt_learner"
    folder.mkdir(parents=True)
    state = {"state_dict": state_dict, "epoch": epoch, "optimizer": optim.state_dict(), "scheduler": scheduler}
    torch.save(state, folder / f"model.pth.tar-{epoch}")


@pytest.mark.parametrize("trainer_cls", [KgCoOp, ProGrad])
def test_a_checkpoint_with_the_authors_keys_loads_and_evaluates(trainer_cls, tiny_clip_path, tmp_path):
    trainer = bare_trainer(trainer_cls, cfg_for(tiny_clip_path, **{"TRAINER.COOP.CTX_INIT": True}))
    pl = trainer.model.prompt_learner
    theirs = {k: v.clone().half() for k, v in pl.state_dict().items()}  # their PREC fp16 default: fp16 tensors
    theirs["ctx"] = torch.randn_like(pl.ctx).half()
    theirs["token_prefix"] = torch.zeros_like(theirs["token_prefix"])  # dropped on load, as theirs drops it
    authors_checkpoint(tmp_path, theirs)
    assert trainer.load_model(str(tmp_path), epoch=5) == 5
    assert torch.equal(pl.ctx.data, theirs["ctx"].float())
    assert not torch.equal(pl.token_prefix, theirs["token_prefix"].float())
    images = batch_of(n=3)["img"]
    image = trainer.model.image_encoder(images)
    image = image / image.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        expected = trainer.model.logit_scale.exp() * image @ full_text_features(trainer.model).t()
    torch.testing.assert_close(trainer.model_inference(images), expected, atol=1e-4, rtol=1e-4)
    # and ours carry their keys, so their load_model (strict=False, prefix/suffix dropped) takes them
    trainer.save_model(0, str(tmp_path / "ours"))
    ours = torch.load(tmp_path / "ours" / "prompt_learner" / "model.pth.tar-1", weights_only=True)
    assert list(ours["state_dict"]) == list(theirs)


def test_a_trainer_ported_from_the_dassl_fork_gets_prograd_backward_and_update_from_its_base():
    """docs/porting-a-dassl-trainer.md: the fork's method is a method's code, taken as a base class."""
    from coop_toolkit.trainers.prograd import ProGradUpdate
    from dasslite.engine.trainer import TrainerBase

    class Ported(ProGradUpdate, TrainerBase):
        pass

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    trainer = Ported()
    trainer.register_model("model", model, torch.optim.SGD(model.parameters(), lr=1.0))
    x = torch.randn(4, 3)
    loss_a, loss_b = lambda: model(x).sum(), lambda: -(model(x) ** 2).mean()  # noqa: E731
    grads = [torch.autograd.grad(f(), list(model.parameters())) for f in (loss_a, loss_b)]
    assert any(torch.dot(a.flatten(), b.flatten()) < 0 for a, b in zip(*grads))  # a projection happens
    expected = [p.detach() - project_conflicting(a, b, 0.5) for p, a, b in zip(model.parameters(), *grads)]
    trainer.prograd_backward_and_update(loss_a(), loss_b(), lambda_=0.5)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)
