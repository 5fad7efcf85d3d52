"""The same seed starts MaPLe / IVLP / VPT / PromptSRC from the prompts the authors' code draws.

The reference here is a direct replay, written out in this file from torch draws, of the order in
which the authors' modified CLIP and prompt learners are constructed (their CLIP.__init__ with its
prompt parameters, then initialize_parameters, then MaPLe's prompt learner).
"""

import pytest
import torch
import torch.nn as nn

from coop_toolkit.trainers.ivlp import IVLP
from coop_toolkit.trainers.maple import MaPLe
from coop_toolkit.trainers.prompted_encoders import UnsupportedBackboneError
from coop_toolkit.trainers.promptsrc import PromptSRC
from coop_toolkit.trainers.vpt import VPT
from tests.trainers.helpers import CLASSNAMES, make_cfg
from tools.tiny_clip import save_tiny_clip

LAYERS = 3


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-B32.pt"
    save_tiny_clip(path, shape="ViT-B/32", layers=LAYERS, fmt="state_dict")
    return str(path)


def build(trainer_class, clip_path, seed, **opts):
    """The trainer's model as build_model makes it, from the generator seeded as train.py seeds it."""
    cfg = make_cfg(clip_path, **{f"TRAINER.{trainer_class.config_node}.{k}": v for k, v in opts.items()})
    cfg.TRAINER[trainer_class.config_node].PREC = "fp32"
    trainer = trainer_class.__new__(trainer_class)
    trainer.cfg, trainer.device = cfg, torch.device("cpu")
    torch.manual_seed(seed)
    return trainer.build_custom_clip(CLASSNAMES, trainer.load_frozen_clip())


def normal(*shape):
    return nn.init.normal_(torch.empty(shape), std=0.02)


def authors_construction(seed, n_vis=0, depth_vis=0, n_txt=0, depth_txt=0):
    """Their CLIP.__init__ for the tiny ViT-B/32 shape (width 96, patch 32, 224 px; text width 64, 3
    layers, embed 32, 49408 tokens, 77 positions), then initialize_parameters. Returns the prompts.
    seed None: continue from the generator's state (a further CLIP built after the first)."""
    if seed is not None:
        torch.manual_seed(seed)
    nn.Conv2d(3, 96, 32, 32, bias=False)
    vpt = normal(n_vis, 96) if depth_vis else None
    torch.randn(96)
    torch.randn(50, 96)
    vis_deep, txt_deep = [], []
    for i in range(LAYERS):
        nn.MultiheadAttention(96, 1), nn.Linear(96, 384), nn.Linear(384, 96)
        if i != 0 and depth_vis > i:
            vis_deep.append(normal(n_vis, 96))
    torch.randn(96, 32)
    for i in range(LAYERS):
        nn.MultiheadAttention(64, 1), nn.Linear(64, 256), nn.Linear(256, 64)
        if i != 0 and depth_txt > i:
            txt_deep.append(normal(n_txt, 64))
    nn.Embedding(49408, 64)
    nn.init.normal_(torch.empty(49408, 64), std=0.02)
    nn.init.normal_(torch.empty(77, 64), std=0.01)
    proj_std = 64**-0.5 * (2 * LAYERS) ** -0.5
    for _ in range(LAYERS):
        nn.init.normal_(torch.empty(192, 64), std=64**-0.5)
        nn.init.normal_(torch.empty(64, 64), std=proj_std)
        nn.init.normal_(torch.empty(256, 64), std=128**-0.5)
        nn.init.normal_(torch.empty(64, 256), std=proj_std)
    nn.init.normal_(torch.empty(64, 32), std=64**-0.5)
    return vpt, vis_deep, txt_deep


def assert_equal_lists(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert torch.equal(a.detach(), b)


def test_ivlp_prompts_equal_the_authors_draws(clip_path):
    model = build(IVLP, clip_path, 7, N_CTX_VISION=3, N_CTX_TEXT=2, PROMPT_DEPTH_VISION=3, PROMPT_DEPTH_TEXT=2)
    after_ours = torch.rand(3)
    vpt, vis_deep, txt_deep = authors_construction(7, 3, 3, 2, 2)
    assert torch.equal(after_ours, torch.rand(3))  # the generator is left where theirs is
    assert torch.equal(model.vision_prompts.first.detach(), vpt)
    assert_equal_lists(model.vision_prompts.deep, vis_deep)
    assert_equal_lists(model.text_prompts.deep, txt_deep)
    assert len(vis_deep) == 2 and len(txt_deep) == 1
    sd = model.state_dict()
    assert torch.equal(sd["image_encoder.transformer.resblocks.2.VPT_shallow"], vis_deep[1])
    assert torch.equal(sd["text_encoder.transformer.resblocks.1.VPT_shallow"], txt_deep[0])


def test_vpt_prompts_equal_the_authors_draws(clip_path):
    model = build(VPT, clip_path, 3, N_CTX_VISION=4, PROMPT_DEPTH_VISION=3)
    vpt, vis_deep, _ = authors_construction(3, 4, 3)
    assert torch.equal(model.vision_prompts.first.detach(), vpt)
    assert_equal_lists(model.vision_prompts.deep, vis_deep)


def test_promptsrc_prompts_equal_the_authors_draws_and_its_frozen_clips_are_replayed(clip_path):
    model = build(PromptSRC, clip_path, 4, PROMPT_DEPTH_VISION=2, PROMPT_DEPTH_TEXT=3)
    after_ours = torch.rand(3)
    vpt, vis_deep, txt_deep = authors_construction(4, 4, 2, 4, 3)
    for _ in range(2):  # their frozen text and image CLIPs, built after the prompt learner
        authors_construction(None)
    assert torch.equal(after_ours, torch.rand(3))
    assert torch.equal(model.vision_prompts.first.detach(), vpt)
    assert_equal_lists(model.vision_prompts.deep, vis_deep)
    assert_equal_lists(model.text_prompts.deep, txt_deep)


def test_maple_prompt_learner_draws_after_the_whole_clip(clip_path):
    model = build(MaPLe, clip_path, 11, N_CTX=2, PROMPT_DEPTH=3)
    authors_construction(11)
    proj = nn.Linear(64, 96)
    texts = [nn.init.normal_(torch.empty(2, 64), std=0.02) for _ in range(2)]
    single = nn.Linear(64, 96)
    pl = model.prompt_learner
    assert torch.equal(pl.proj.weight.detach(), proj.weight) and torch.equal(pl.proj.bias.detach(), proj.bias)
    assert_equal_lists(pl.compound_prompts_text, texts)
    for layer in pl.compound_prompt_projections:  # every coupling map starts as the same copy
        assert torch.equal(layer.weight.detach(), single.weight) and torch.equal(layer.bias.detach(), single.bias)


@pytest.mark.parametrize("trainer_class", [MaPLe, VPT])
def test_a_resnet_backbone_is_refused_for_vision_prompts(trainer_class, tiny_rn_clip_path):
    with pytest.raises(UnsupportedBackboneError, match="ViT"):
        build(trainer_class, tiny_rn_clip_path, 0)


def test_language_only_ivlp_has_no_image_prompts_and_runs_on_a_resnet(clip_path, tiny_rn_clip_path, caplog):
    opts = dict(N_CTX_VISION=0, N_CTX_TEXT=4, PROMPT_DEPTH_VISION=0, PROMPT_DEPTH_TEXT=2)
    model = build(IVLP, clip_path, 2, **opts)
    _, _, txt_deep = authors_construction(2, 0, 0, 4, 2)
    assert model.vision_prompts.first is None and len(model.vision_prompts.deep) == 0
    assert_equal_lists(model.text_prompts.deep, txt_deep)
    model = build(IVLP, tiny_rn_clip_path, 2, **opts)  # the authors' draw order is replayed for ViTs only
    assert "drawn directly" in caplog.text and len(model.text_prompts.deep) == 1
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 5)


@pytest.fixture(scope="module")
def clip12_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-12-layers.pt"
    save_tiny_clip(path, shape="ViT-B/16", layers=12, fmt="state_dict")
    return str(path)


@pytest.mark.parametrize(
    "trainer_class, opts, count, prompt_keys",
    [  # the authors' yamls at 12 layers; counts as their checkpoints hold them (PromptSRC: 473 minus the
        # 152 keys of their frozen image-tower copy, which loading skips)
        (MaPLe, {}, 330, ["prompt_learner.proj.weight", "prompt_learner.compound_prompts_text.7"]),
        (IVLP, dict(N_CTX_VISION=4, N_CTX_TEXT=4), 321, ["image_encoder.transformer.resblocks.8.VPT_shallow"]),
        (
            VPT,
            dict(N_CTX_VISION=8, PROMPT_DEPTH_VISION=12),
            313,
            ["image_encoder.transformer.resblocks.11.VPT_shallow"],
        ),
        (PromptSRC, {}, 473 - 152, ["text_encoder.transformer.resblocks.8.VPT_shallow", "image_encoder.VPT"]),
    ],
)
def test_state_dict_keys_are_the_authors(trainer_class, opts, count, prompt_keys, clip12_path):
    sd = build(trainer_class, clip12_path, 0, **opts).state_dict()
    assert len(sd) == count and sd.keys() >= set(prompt_keys)
    assert list(sd)[0] == "logit_scale" and "image_encoder.transformer.resblocks.0.VPT_shallow" not in sd


def test_a_prompt_depth_beyond_the_towers_layers_names_the_key(clip_path):
    with pytest.raises(ValueError, match=r"TRAINER.IVLP.PROMPT_DEPTH_VISION is 9; .* 3 layers"):
        build(IVLP, clip_path, 0, PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=3)
