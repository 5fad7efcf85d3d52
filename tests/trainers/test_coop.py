"""CoOp's prompt layout, initialisation and gradients."""

import pytest
import torch
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference
from open_clip.tokenizer import SimpleTokenizer

from coop_toolkit.trainers.coop import CustomCLIP, PromptLearner
from tests.trainers.helpers import CLASSNAMES, clip_fp32, make_cfg

BPE = SimpleTokenizer()  # count a class name's tokens as open_clip does, not through the code under test


@pytest.fixture(scope="module")
def clip(tiny_clip_path):
    return clip_fp32(tiny_clip_path)


def embed(clip, text):
    ids = tokenize([text])
    with torch.no_grad():
        return clip.token_embedding(ids)[0], int(ids.argmax(-1))


def learner(clip, tiny_clip_path, **opts):
    cfg = make_cfg(tiny_clip_path, **{f"TRAINER.COOP.{k}": v for k, v in opts.items()})
    return PromptLearner(cfg, CLASSNAMES, clip)


def test_end_position_layout(clip, tiny_clip_path):
    pl = learner(clip, tiny_clip_path, N_CTX=4)
    prompts = pl()
    assert prompts.shape == (5, 77, 64)
    for i, name in enumerate(CLASSNAMES):
        ref, eot = embed(clip, "X X X X " + name.replace("_", " ") + ".")
        torch.testing.assert_close(prompts[i, 0], ref[0])  # SOS
        torch.testing.assert_close(prompts[i, 1:5], pl.ctx)  # the learned context
        torch.testing.assert_close(prompts[i, 5:], ref[5:])  # class tokens, ".", EOS, padding
        assert int(pl.token_ids[i].argmax()) == eot


def test_middle_position_splits_context_around_the_class(clip, tiny_clip_path):
    pl = learner(clip, tiny_clip_path, N_CTX=4, CLASS_TOKEN_POSITION="middle")
    prompts = pl()
    i, name = 1, "american bulldog"
    n = len(BPE.encode(name))
    ref, _ = embed(clip, "X X X X " + name + ".")
    torch.testing.assert_close(prompts[i, 1:3], pl.ctx[:2])
    torch.testing.assert_close(prompts[i, 3 : 3 + n], ref[5 : 5 + n])  # class tokens between the halves
    torch.testing.assert_close(prompts[i, 3 + n : 5 + n], pl.ctx[2:])
    torch.testing.assert_close(prompts[i, 5 + n :], ref[5 + n :])  # "." EOS padding unchanged


def test_front_position_puts_class_first(clip, tiny_clip_path):
    pl = learner(clip, tiny_clip_path, N_CTX=4, CLASS_TOKEN_POSITION="front")
    prompts = pl()
    name = "great pyrenees"
    n = len(BPE.encode(name))
    ref, _ = embed(clip, "X X X X " + name + ".")
    torch.testing.assert_close(prompts[3, 1 : 1 + n], ref[5 : 5 + n])
    torch.testing.assert_close(prompts[3, 1 + n : 5 + n], pl.ctx)
    torch.testing.assert_close(prompts[3, 5 + n :], ref[5 + n :])


def test_unknown_class_token_position_is_named(clip, tiny_clip_path):
    with pytest.raises(ValueError, match="CLASS_TOKEN_POSITION"):
        learner(clip, tiny_clip_path, CLASS_TOKEN_POSITION="middel")


def test_class_specific_context_has_one_set_per_class(clip, tiny_clip_path):
    pl = learner(clip, tiny_clip_path, N_CTX=3, CSC=True)
    assert pl.ctx.shape == (5, 3, 64)
    prompts = pl()
    for i in range(5):
        torch.testing.assert_close(prompts[i, 1:4], pl.ctx[i])


def test_ctx_init_uses_the_words_embeddings(clip, tiny_clip_path):
    pl = learner(clip, tiny_clip_path, CTX_INIT="a photo of a", N_CTX=16)
    ref, _ = embed(clip, "a photo of a")
    assert pl.n_ctx == 4
    torch.testing.assert_close(pl.ctx.data, ref[1:5])
    ref_prompt, _ = embed(clip, "a photo of a beagle.")
    torch.testing.assert_close(pl()[2], ref_prompt)  # initial prompt = the hand-written one


def test_ctx_init_too_long_is_an_error(clip, tiny_clip_path):
    with pytest.raises(ValueError, match="CTX_INIT"):
        learner(clip, tiny_clip_path, CTX_INIT=" ".join(["word"] * 80))


def test_random_init_is_seeded_and_small(clip, tiny_clip_path):
    torch.manual_seed(1)
    a = learner(clip, tiny_clip_path, N_CTX=16).ctx
    torch.manual_seed(1)
    b = learner(clip, tiny_clip_path, N_CTX=16).ctx
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert 0.01 < a.std().item() < 0.03


def test_only_the_context_receives_gradients(clip, tiny_clip_path):
    cfg = make_cfg(tiny_clip_path, **{"TRAINER.COOP.N_CTX": 4})
    model = CustomCLIP(cfg, CLASSNAMES, clip)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("prompt_learner."))
    logits = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 5)
    logits.logsumexp(1).sum().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {"prompt_learner.ctx"}
    assert model.prompt_learner.ctx.grad.abs().sum() > 0


def test_eval_reuses_class_text_features_until_the_context_changes(clip, tiny_clip_path):
    cfg = make_cfg(tiny_clip_path, **{"TRAINER.COOP.N_CTX": 4})
    model = CustomCLIP(cfg, CLASSNAMES, clip).eval()
    calls = []
    encode = model._encode_text
    model._encode_text = lambda *args: calls.append(1) or encode(*args)
    with torch.no_grad():
        first = model(torch.randn(2, 3, 224, 224))
        model(torch.randn(2, 3, 224, 224))
        assert len(calls) == 1
        model.prompt_learner.ctx.add_(1.0)  # an optimizer step or a loaded checkpoint
        second = model(torch.randn(2, 3, 224, 224))
    assert len(calls) == 2 and not torch.equal(first, second)


def test_random_context_draws_what_the_original_draws_after_building_clip(tiny_clip_path):
    """The original seeds, builds CLIP from OpenAI's state dict (which consumes the RNG), then draws
    ctx ~ N(0, 0.02^2). Building CLIP here consumes the RNG identically (checked once against OpenAI's
    `clip.model.build_model` for ViT and ResNet), so the same seed gives the same initial context."""
    from open_clip.model import build_model_from_openai_state_dict

    from coop_toolkit.trainers.clip_backbone import load_clip

    torch.manual_seed(3)
    clip = load_clip(tiny_clip_path)
    ours = PromptLearner(make_cfg(tiny_clip_path, **{"TRAINER.COOP.N_CTX": 16}), CLASSNAMES, clip).ctx

    sd = torch.jit.load(tiny_clip_path, map_location="cpu").state_dict()
    torch.manual_seed(3)
    build_model_from_openai_state_dict(dict(sd))
    expected = torch.empty(16, 64)
    torch.nn.init.normal_(expected, std=0.02)
    assert torch.equal(ours.data, expected)
