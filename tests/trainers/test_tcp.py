"""TCP (coop_toolkit/trainers/tcp.py): its class tokens and loss against a direct computation, what learns,
the authors' checkpoints, their first draws, and train.py end to end."""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import coop_toolkit as ct
from coop_toolkit.trainers.clip_backbone import load_clip
from coop_toolkit.trainers.tcp import TCP
from tests import test_train_cli
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of

run = test_train_cli.run
data_root = test_train_cli.data_root
LEARNED = {
    "ctx",
    "meta_net.linear1.weight",
    "meta_net.linear1.bias",
    "meta_net.linear2.weight",
    "meta_net.linear2.bias",
}


def tcp_cfg(clip_path):
    cfg = ct.get_cfg(trainer="TCP", config_file=TCP.card.reference_config)
    cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME, cfg.TRAINER.COOP.PREC = clip_path, "OxfordPets", "fp32"
    return cfg


def built(clip_path, seed=1):
    torch.manual_seed(seed)
    return bare_trainer(TCP, tcp_cfg(clip_path))


def direct_text_features(model):
    """The text tower written out: prompt + positions, block by block with the Meta-Net's fp16 tokens put
    at positions 1..4 before the last block (this tiny tower has 2 < 8 blocks), EOT row, projection."""
    learner, enc = model.prompt_learner, model.text_encoder
    meta = learner.meta_net
    hidden = F.linear(learner.knowledge, meta.linear1.weight.half(), meta.linear1.bias.half())
    hidden = hidden * torch.sigmoid(1.702 * hidden)
    tokens = F.linear(hidden, meta.linear2.weight.half(), meta.linear2.bias.half()).view(len(CLASSNAMES), 4, -1)
    x = learner() + enc.positional_embedding
    mask = torch.full((77, 77), float("-inf")).triu_(1)
    blocks = enc.transformer.resblocks
    for k, block in enumerate(blocks):
        if k == len(blocks) - 1:
            x = torch.cat([x[:, :1], tokens.float(), x[:, 5:]], dim=1)
        x = block(x, attn_mask=mask)
    x = enc.ln_final(x)[torch.arange(len(CLASSNAMES)), learner.token_ids.argmax(-1)] @ enc.text_projection
    return x / x.norm(dim=-1, keepdim=True)


def test_class_tokens_and_loss_are_the_direct_computation(tiny_clip_path):
    trainer = built(tiny_clip_path)
    model = trainer.model
    assert trainer.cfg.OPTIM.ADAM_EPS == 1e-3 and trainer.optim.param_groups[0]["eps"] == 1e-3
    assert model.prompt_learner.knowledge.dtype == torch.float16
    with torch.no_grad():
        model.prompt_learner.meta_net.linear2.bias.normal_(std=0.5)  # tokens far from the context's
        text = model.text_features()
        torch.testing.assert_close(text, direct_text_features(model), rtol=1e-4, atol=1e-5)
        batch = batch_of(n=3)
        output = trainer.forward_train(batch["img"])
        losses = trainer.compute_losses(output, batch["label"])
    knowledge = model.prompt_learner.knowledge.float()
    cos = F.cosine_similarity(output[2], knowledge / knowledge.norm(dim=-1, keepdim=True), dim=1, eps=1e-7)
    torch.testing.assert_close(losses["kg"], 8.0 * (1 - cos.mean()))  # 8.0 whatever TRAINER.COOP.W says
    torch.testing.assert_close(losses["ce"], F.cross_entropy(output[0], batch["label"]))


def test_gradients_reach_the_context_and_the_meta_net_only(tiny_clip_path):
    trainer = built(tiny_clip_path)
    trainer.batch_idx, trainer.num_batches = 0, 2
    trainer.forward_backward(batch_of())
    graded = {n for n, p in trainer.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert graded == {f"prompt_learner.{n}" for n in LEARNED}
    assert all(p.dtype == torch.float32 for p in trainer.learned_parameters().values())


def test_the_same_seed_draws_as_the_authors_build(tiny_clip_path):
    trainer = built(tiny_clip_path, seed=5)
    ours = torch.get_rng_state()
    torch.manual_seed(5)
    clip = load_clip(tiny_clip_path)  # their CLIP
    ctx = nn.init.normal_(torch.empty(4, 64), std=0.02)  # ctx (CTX_INIT False)
    load_clip(tiny_clip_path)  # their second CLIP, for the hand-written features
    embed = clip.visual.output_dim
    linear1, linear2 = nn.Linear(embed, embed // 4), nn.Linear(embed // 4, 4 * 64)  # the Meta-Net
    assert torch.equal(ours, torch.get_rng_state())
    learner = trainer.model.prompt_learner
    assert torch.equal(learner.ctx, ctx)
    assert torch.equal(learner.meta_net.linear1.weight, linear1.weight)
    assert torch.equal(learner.meta_net.linear2.bias, linear2.bias)


def test_a_checkpoint_of_the_authors_code_loads_and_evaluates(tiny_clip_path, tmp_path):
    trainer = built(tiny_clip_path)
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) for k, v in trainer.model.prompt_learner.state_dict().items()}
    state["token_prefix"], state["token_suffix"] = torch.zeros(3, 1, 64), torch.zeros(3, 72, 64)  # other classes
    os.makedirs(tmp_path / "prompt_learner")
    torch.save({"state_dict": state, "epoch": 50}, tmp_path / "prompt_learner" / "model.pth.tar-50")
    trainer.load_model(str(tmp_path), epoch=50)
    for key in LEARNED:
        assert torch.equal(trainer.model.prompt_learner.state_dict()[key], state[key]), key
    logits = trainer.model_inference(batch_of()["img"])
    assert logits.shape == (2, len(CLASSNAMES)) and torch.isfinite(logits).all()


def test_train_py_trains_and_evaluates(tiny_clip_path, data_root, tmp_path):
    opts = ("DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "TRAINER.COOP.PREC", "fp32")
    trained = run(data_root, tmp_path / "a", tiny_clip_path, "TCP", TCP.card.reference_config, opts=opts)
    extra = ("--eval-only", "--model-dir", str(tmp_path / "a"), "--load-epoch", "1")
    again = run(data_root, tmp_path / "b", tiny_clip_path, "TCP", TCP.card.reference_config, extra=extra, opts=opts)
    assert again["metrics"] == trained["metrics"]
    sd = torch.load(tmp_path / "a" / "prompt_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert LEARNED <= set(sd)


def test_cached_class_features_follow_the_meta_net(tiny_clip_path):
    model = built(tiny_clip_path).model.eval()
    with torch.no_grad():
        before = model.text_features()
        model.prompt_learner.meta_net.linear2.bias.add_(1.0)  # the context is unchanged
        assert not torch.equal(model.text_features(), before)
