"""MMA (coop_toolkit/trainers/mma.py): its adapter terms and gradient rescaling against a direct computation,
what learns, the authors' checkpoints, their first draws, refusals, and train.py end to end."""

import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import coop_toolkit as ct
from coop_toolkit.trainers.mma import MultiModalAdapter
from coop_toolkit.trainers.text_tower import UnsupportedBackboneError
from dasslite.errors import ConfigError
from tests import test_train_cli
from tests.reporting.test_scripts import stub  # noqa: F401  (a fixture)
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of
from tests.trainers.test_deep_prompt_init import LAYERS, authors_construction
from tools.tiny_clip import save_tiny_clip

run = test_train_cli.run
data_root = test_train_cli.data_root
YAML = MultiModalAdapter.card.reference_config


def mma_cfg(clip_path, **opts):
    cfg = ct.get_cfg(trainer="MultiModalAdapter", config_file=YAML)
    cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME, cfg.TRAINER.MMADAPTER.PREC = clip_path, "OxfordPets", "fp32"
    for key, value in opts.items():
        cfg.TRAINER.MMADAPTER[key] = value
    return cfg


def built(clip_path, seed=1, **opts):
    torch.manual_seed(seed)
    return bare_trainer(MultiModalAdapter, mma_cfg(clip_path, **opts))


def term(x, own, shared, scale, norm=None):
    """An adapter's term written out: scale * up(shared(down(norm(x)))), no gradient rescaling."""
    y = F.relu(own.down[0](norm(x) if norm is not None else x))
    y = F.relu(shared[0](y)) if shared is not None else y
    return scale * own.up(y)


def direct_blocks(blocks, x, own, shared, scale, mask=None):
    for i, block in enumerate(blocks, start=1):
        out = block(x, attn_mask=mask)
        x = out + term(x, own[i], shared[i], scale, block.ln_1) if own[i] is not None else out
    return x


def direct_logits(model, image, s=0.5):
    """Their forward written out on the tiny CLIP (batch-first blocks, all 77 positions), every layer 0..2."""
    learner, enc, visual = model.adapter_learner, model.text_encoder, model.image_encoder
    text_a, vis_a, shared = learner.text_adapter, learner.visual_adapter, learner.shared_adapter
    x = learner.token_embedding
    x = x + term(x, text_a[0], shared[0], s) + enc.positional_embedding
    mask = torch.full((77, 77), float("-inf")).triu_(1)
    x = enc.ln_final(direct_blocks(enc.transformer.resblocks, x, text_a, shared, s, mask))
    text = x[torch.arange(len(CLASSNAMES)), learner.tokenized_prompts.argmax(-1)] @ enc.text_projection
    v = visual.conv1(image).flatten(2).permute(0, 2, 1)
    v = torch.cat([visual.class_embedding.expand(v.shape[0], 1, -1), v], dim=1) + visual.positional_embedding
    v = visual.ln_pre(v)
    v = v + term(v, vis_a[0], shared[0], s)
    v = visual.ln_post(direct_blocks(visual.transformer.resblocks, v, vis_a, shared, s)[:, 0]) @ visual.proj
    return model.logit_scale.exp() * F.normalize(v, dim=-1) @ F.normalize(text, dim=-1).t()


def every_layer(clip_path):
    """Adapters on layers 0..2 of the 2-layer tiny CLIP, with a scale that makes their terms count."""
    trainer = built(clip_path, ADAPTER_START=0, ADAPTER_END=2, ADAPTER_SCALE=0.5)
    with torch.no_grad():  # up starts near zero output; give every adapter a visible effect
        for name, p in trainer.model.adapter_learner.named_parameters():
            if name.endswith("bias"):
                p.normal_(std=0.1, generator=torch.Generator().manual_seed(len(name)))
    return trainer


def test_the_adapter_terms_are_the_direct_computation(tiny_clip_path):
    trainer = every_layer(tiny_clip_path)
    image = batch_of(n=3)["img"]
    with torch.no_grad():
        expected = direct_logits(trainer.model, image)
        torch.testing.assert_close(trainer.model_inference(image), expected, rtol=1e-4, atol=1e-4)
        assert (direct_logits(trainer.model, image, s=0.0) - expected).abs().max() > 1e-2  # the terms count


def test_gradients_reach_the_adapters_only_rescaled_by_one_over_the_scale(tiny_clip_path):
    """Their gradient_scale_layer: the adapters of layers 1.. get 1 / scale times the true gradient, layer 0's
    (no rescaling there) the true one, which also shows the stream below them gets the true gradient."""
    trainer = every_layer(tiny_clip_path)
    batch = batch_of(n=3)
    learned = trainer.learned_parameters()
    params = list(learned.values())
    ours = torch.autograd.grad(F.cross_entropy(trainer.model(batch["img"]), batch["label"]), params)
    true = torch.autograd.grad(F.cross_entropy(direct_logits(trainer.model, batch["img"]), batch["label"]), params)
    for name, got, want in zip(learned, ours, true):
        factor = 1.0 if name.split(".")[2] == "0" else 1 / 0.5  # adapter_learner.<list>.<layer>. ...
        torch.testing.assert_close(got, factor * want, rtol=1e-4, atol=1e-6, msg=name)
    trainer.batch_idx, trainer.num_batches = 0, 2
    trainer.forward_backward(batch)
    graded = {n for n, p in trainer.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert graded == set(learned) and all(n.startswith("adapter_learner.") for n in graded)
    assert all(p.dtype == torch.float32 for p in learned.values())


@pytest.fixture(scope="module")
def b32_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-B32.pt"
    save_tiny_clip(path, shape="ViT-B/32", layers=LAYERS, fmt="state_dict")
    return str(path)


def authors_adapters(width, depth, start, end, dim):
    """Their _build_adapter, written out: per layer Linear(width, dim) then Linear(dim, width) (or one
    Linear(dim, dim) for the shared one), then each weight kaiming_normal_(fan_out, relu) in that order."""
    layers = {
        i: [nn.Linear(width, dim)] if width == dim else [nn.Linear(width, dim), nn.Linear(dim, width)]
        for i in range(start, end + 1)
    }
    for linears in layers.values():
        for linear in linears:
            nn.init.kaiming_normal_(linear.weight, mode="fan_out", nonlinearity="relu")
    return layers


def test_the_same_seed_draws_as_the_authors_build(b32_path):
    """Their CLIP's construction (replayed by hand in test_deep_prompt_init), then the text, visual and
    shared adapters of layers 2..3 (text width 64, image width 96, DIM 16)."""
    trainer = built(b32_path, seed=7, ADAPTER_START=2, ADAPTER_END=3, ADAPTER_DIM=16)
    ours = torch.get_rng_state()
    authors_construction(7)
    text, visual, shared = (authors_adapters(w, LAYERS, 2, 3, 16) for w in (64, 96, 16))
    assert torch.equal(ours, torch.get_rng_state())
    learner = trainer.model.adapter_learner
    for i in (2, 3):
        assert torch.equal(learner.text_adapter[i].down[0].weight, text[i][0].weight)
        assert torch.equal(learner.text_adapter[i].up.weight, text[i][1].weight)
        assert torch.equal(learner.visual_adapter[i].up.weight, visual[i][1].weight)
        assert torch.equal(learner.shared_adapter[i][0].weight, shared[i][0].weight)
        assert not learner.shared_adapter[i][0].bias.any()
    assert learner.text_adapter[1] is None and learner.visual_adapter[0] is None


def test_a_checkpoint_of_the_authors_code_loads_and_evaluates(tiny_clip_path, tmp_path):
    trainer = built(tiny_clip_path)
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) for k, v in trainer.model.adapter_learner.state_dict().items()}
    state["token_embedding"] = torch.zeros(3, 77, 64)  # their run's classes: dropped, rebuilt from ours
    state["tokenized_prompts"] = torch.zeros(3, 77, dtype=torch.long)
    os.makedirs(tmp_path / "adapter_learner")
    torch.save({"state_dict": state, "epoch": 5}, tmp_path / "adapter_learner" / "model.pth.tar-5")
    trainer.load_model(str(tmp_path), epoch=5)
    loaded = trainer.model.adapter_learner.state_dict()
    for key in trainer.learned_parameters():
        key = key.removeprefix("adapter_learner.")
        assert torch.equal(loaded[key], state[key]), key
    assert loaded["token_embedding"].shape[0] == len(CLASSNAMES)
    logits = trainer.model_inference(batch_of()["img"])
    assert logits.shape == (2, len(CLASSNAMES)) and torch.isfinite(logits).all()


def test_an_image_tower_without_blocks_is_refused_by_name(tiny_rn_clip_path):
    with pytest.raises(UnsupportedBackboneError, match="MultiModalAdapter.*tiny-RN.pt.*ModifiedResNet"):
        built(tiny_rn_clip_path)


@pytest.mark.parametrize(
    "opts,key",
    [
        (dict(ADAPTER_START=6, ADAPTER_END=5), "ADAPTER_START..ADAPTER_END is 6..5"),
        (dict(ADAPTER_SCALE=0.0), "ADAPTER_SCALE is 0"),
        (dict(ADAPTER_DIM=64), "ADAPTER_DIM is 64, the text tower's width"),
    ],
)
def test_bad_adapter_keys_are_refused_naming_the_key(tiny_clip_path, opts, key):
    with pytest.raises(ConfigError, match=key):
        built(tiny_clip_path, **opts)


def test_train_py_trains_and_evaluates(tiny_clip_path, data_root, tmp_path):
    opts = ("DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "TRAINER.MMADAPTER.PREC", "fp32")
    trained = run(data_root, tmp_path / "a", tiny_clip_path, "MultiModalAdapter", YAML, opts=opts)
    extra = ("--eval-only", "--model-dir", str(tmp_path / "a"), "--load-epoch", "1")
    again = run(data_root, tmp_path / "b", tiny_clip_path, "MultiModalAdapter", YAML, extra=extra, opts=opts)
    assert again["metrics"] == trained["metrics"]
    sd = torch.load(tmp_path / "a" / "adapter_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert {"token_embedding", "tokenized_prompts", "shared_adapter.2.0.weight", "text_adapter.2.up.bias"} <= set(sd)
    from PIL import Image  # the run folder predicts through the API, with the trained adapters

    loaded = ct.load_run(str(tmp_path / "a"))
    picture = Image.new("RGB", (40, 30), (200, 30, 30))
    batch = loaded.preprocess(picture).unsqueeze(0)
    torch.testing.assert_close(loaded.logits([picture]), loaded.trainer.model_inference(batch), rtol=1e-5, atol=1e-5)
    adapter = loaded.trainer.model.adapter_learner.text_adapter[2].up.bias
    assert torch.equal(adapter.detach(), sd["text_adapter.2.up.bias"])


def test_cached_class_features_follow_the_adapters(tiny_clip_path):
    model = built(tiny_clip_path).model.eval()
    with torch.no_grad():
        before = model.text_features()
        model.adapter_learner.text_adapter[2].up.bias.add_(1.0)
        assert not torch.equal(model.text_features(), before)


def test_the_base2new_scripts_run_it_and_results_print_its_published_row(tmp_path, stub, capsys):  # noqa: F811
    import results
    from tests.reporting.test_results import _b2n
    from tests.reporting.test_scripts import _arg, _run

    env = dict(TRAINER="MultiModalAdapter", CFG="vit_b16_ep5")
    _, (train,) = _run("cocoop/base2new_train.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    _, (_, test) = _run("cocoop/base2new_test.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    assert _arg(train, "--config-file") == "configs/trainers/MultiModalAdapter/vit_b16_ep5.yaml"
    assert _arg(test, "--load-epoch") == "5"  # their base2new_test.sh loads epoch 5
    root = tmp_path / "output"
    for name, dataset in (("oxford_pets", "OxfordPets"), ("dtd", "DescribableTextures")):
        _b2n(root, name, 1, 90.0, 50.0, trainer="MultiModalAdapter", cfg="vit_b16_ep5", dataset=dataset)
    assert results.main([str(root), "--out", str(tmp_path / "tables"), "--paper"]) == 0
    assert "(paper 83.2" in capsys.readouterr().out  # the README's base average


def test_beside_an_fp16_clip_the_adapters_run_in_fp16_as_their_half_modules():
    """Their _build_adapter calls .half() when CLIP is fp16; ours keeps fp32 parameters and casts them where
    they run, so a term on fp16 input is the one their fp16 modules compute, bit for bit."""
    import copy

    from coop_toolkit.trainers.mma import adapter_term, build_adapters

    torch.manual_seed(0)
    own, shared = build_adapters(64, 2, 1, 1, 16)[1], build_adapters(16, 2, 1, 1, 16)[1]
    norm = nn.LayerNorm(64)
    x = torch.randn(3, 7, 64).half()
    theirs_own, theirs_shared = copy.deepcopy(own).half(), copy.deepcopy(shared).half()
    expected = 0.001 * theirs_own.up(theirs_shared(theirs_own.down(norm.half()(x))))
    got = adapter_term(x, own, shared, 0.001, norm.half())
    assert got.dtype == torch.float16 and own.up.weight.dtype == torch.float32
    assert torch.equal(got, expected)
