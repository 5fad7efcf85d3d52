"""CoCoOp: Meta-Net shapes, batched logits equal the per-image computation, gradients."""

import pytest
import torch

from coop_toolkit.trainers.clip_backbone import TextEncoder
from coop_toolkit.trainers.cocoop import CustomCLIP
from tests.trainers.helpers import CLASSNAMES, COCOOP_STATE_KEYS, clip_fp32, make_cfg


@pytest.fixture(scope="module")
def model(tiny_clip_path):
    cfg = make_cfg(tiny_clip_path, **{"TRAINER.COCOOP.N_CTX": 4, "TRAINER.COCOOP.CTX_INIT": "a photo of a"})
    torch.manual_seed(0)
    model = CustomCLIP(cfg, CLASSNAMES, clip_fp32(tiny_clip_path))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("prompt_learner."))
    with torch.no_grad():  # make the Meta-Net's effect large enough to see
        model.prompt_learner.meta_net.linear2.weight.mul_(50)
    return model


def per_image_logits(model, images):
    """The original algorithm: one full-length (77-token) text pass per image over all classes."""
    full = TextEncoder.__new__(TextEncoder)
    full.__dict__.update(model.text_encoder.__dict__)
    full.trim = False
    feats = model.image_encoder(images)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    pl = model.prompt_learner
    rows = []
    for f in feats:
        bias = pl.meta_net(f.unsqueeze(0))
        ctx = (pl.ctx + bias).unsqueeze(0).expand(pl.n_cls, -1, -1)
        prompts = torch.cat([pl.token_prefix, ctx, pl.token_suffix], dim=1)
        text = full(prompts, pl.token_ids)
        text = text / text.norm(dim=-1, keepdim=True)
        rows.append(model.logit_scale.exp() * f @ text.t())
    return torch.stack(rows)


def test_meta_net_shapes_and_state_dict_keys(model):
    pl = model.prompt_learner
    assert pl.meta_net.linear1.weight.shape == (32 // 16, 32)  # vis_dim 32 -> 2 -> ctx width 64
    assert pl.meta_net.linear2.weight.shape == (64, 2)
    assert set(pl.state_dict()) == COCOOP_STATE_KEYS


@pytest.mark.parametrize("chunk", [0, 3])
def test_batched_logits_equal_per_image_computation(model, chunk):
    images = torch.randn(4, 3, 224, 224)
    model.chunk_size = chunk or 1024
    with torch.no_grad():
        batched = model(images)
        reference = per_image_logits(model, images)
    assert batched.shape == (4, 5)
    assert (batched - reference).abs().max() <= 1e-4


def test_batch_of_one_equals_row_of_batch(model):
    images = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(3)])
    assert (together - alone).abs().max() <= 1e-4


def test_different_images_get_different_text_features(model):
    feats = torch.nn.functional.normalize(torch.randn(2, 32), dim=-1)
    pl = model.prompt_learner
    with torch.no_grad():
        prompts = pl(feats)
        a = model.text_encoder(prompts[0], pl.token_ids)
        b = model.text_encoder(prompts[1], pl.token_ids)
    assert prompts.shape == (2, 5, 77, 64)
    assert (a - b).abs().max() > 1e-3


def test_context_and_meta_net_receive_gradients_clip_does_not(model):
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 224, 224)), torch.tensor([0, 3]))
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {
        "prompt_learner.ctx",
        "prompt_learner.meta_net.linear1.weight",
        "prompt_learner.meta_net.linear1.bias",
        "prompt_learner.meta_net.linear2.weight",
        "prompt_learner.meta_net.linear2.bias",
    }


def test_activation_checkpointing_gives_the_same_gradients(model):
    images, labels = torch.randn(2, 3, 224, 224), torch.tensor([1, 2])
    grads = []
    for ckpt in (False, True):
        model.zero_grad(set_to_none=True)
        model.checkpoint, model.chunk_size = ckpt, 4
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        grads.append(model.prompt_learner.ctx.grad.clone())
    model.checkpoint, model.chunk_size = False, 1024
    torch.testing.assert_close(grads[0], grads[1])
