"""CoPrompt (coop_toolkit/trainers/coprompt.py): its loss against a direct computation, what learns, the
authors' checkpoints, their first draws, their per-dataset settings, the descriptions file, and train.py."""

import json
import os
import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import coop_toolkit as ct
from coop_toolkit.trainers.authors_init import replay_clip_construction
from coop_toolkit.trainers.clip_backbone import load_clip
from coop_toolkit.trainers.coprompt import PER_DATASET, CoPrompt
from coop_toolkit.trainers.maple import MaPLe, MaPLeCLIP
from coop_toolkit.trainers.text_tower import text_tower
from dasslite.errors import ConfigError, UserFileNotFoundError
from tests import test_train_cli
from tests.reporting.test_scripts import stub  # noqa: F401  (a fixture)
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of
from tools.tiny_clip import save_tiny_clip

run = test_train_cli.run
data_root = test_train_cli.data_root
ADAPTER_KEYS = {f"adapter_{side}.fc.{i}.weight" for side in ("image", "text") for i in (0, 2)}
LEARNED = ADAPTER_KEYS | {
    "prompt_learner.ctx",
    "prompt_learner.proj.weight",
    "prompt_learner.proj.bias",
    "prompt_learner.compound_prompts_text.0",
    "prompt_learner.compound_prompt_projections.0.weight",
    "prompt_learner.compound_prompt_projections.0.bias",
}
N_DESCRIPTIONS = 3


def write_descriptions(path, classnames, n=N_DESCRIPTIONS, drop=None):
    """A descriptions file in the authors' format: {class name with spaces: [sentences]}."""
    table = {
        c.replace("_", " "): [f"a photo of a {c}, which looks like number {i}." for i in range(n)] for c in classnames
    }
    table.pop(drop, None)
    path.write_text(json.dumps(table))
    return str(path)


@pytest.fixture(scope="module")
def descriptions(tmp_path_factory):
    return write_descriptions(tmp_path_factory.mktemp("gpt") / "oxford_pets_prompt.json", CLASSNAMES)


def coprompt_cfg(clip_path, descriptions="", **opts):
    cfg = ct.get_cfg(trainer="CoPrompt", config_file=CoPrompt.card.reference_config)
    cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME = clip_path, "OxfordPets"
    node = cfg.TRAINER.CoPrompt
    node.PREC, node.PROMPT_DEPTH, node.GPT_FILE = "fp32", 2, descriptions
    for key, value in opts.items():
        node[key] = value
    return cfg


def built(clip_path, descriptions="", seed=1, **opts):
    torch.manual_seed(seed)
    return bare_trainer(CoPrompt, coprompt_cfg(clip_path, descriptions, **opts))


def two_views(n=3):
    return [batch_of(n=n, seed=0)["img"], batch_of(n=n, seed=1)["img"]]


def adapted(x, adapter, ratio):
    """ratio * relu(relu(x W0^T) W2^T) + (1 - ratio) * x, normalised."""
    y = F.relu(F.linear(F.relu(F.linear(x, adapter.fc[0].weight)), adapter.fc[2].weight))
    mixed = ratio * y + (1 - ratio) * x
    return mixed / mixed.norm(dim=-1, keepdim=True)


def test_loss_is_the_direct_computation(tiny_clip_path, descriptions):
    trainer = built(tiny_clip_path, descriptions)
    model = trainer.model
    clip = load_clip(tiny_clip_path)
    with torch.no_grad():
        for p in trainer.learned_parameters().values():
            p.add_(torch.randn_like(p) * 0.05)  # adapters away from their init
        view, frozen_view = two_views()
        label = torch.tensor([0, 3, 4])
        random.seed(3)
        output = trainer.forward_train((view, frozen_view))
        losses = trainer.compute_losses(output, label)

        # Direct: MaPLe's raw features through each adapter, the frozen CLIP's on the second view, and the
        # description features (each sentence encoded by open_clip, normalised) at the index random drew.
        prompts = model.prompts()
        image = adapted(MaPLeCLIP.image_features(model, view, prompts, normalize=False), model.adapter_image, 0.1)
        text = adapted(MaPLeCLIP.encode_text(model, prompts, normalize=False), model.adapter_text, 0.2)
        logits = model.logit_scale.exp() * image @ text.t()
        frozen_image = F.normalize(clip.encode_image(frozen_view), dim=-1)
        random.seed(3)
        pick = random.randint(0, N_DESCRIPTIONS - 1)
        sentences = [f"a photo of a {c}, which looks like number {pick}." for c in CLASSNAMES]
        frozen_text = F.normalize(clip.encode_text(text_tower(clip).tokenize(sentences)), dim=-1)
    cos_text = F.cosine_similarity(text, frozen_text, dim=1, eps=1e-7).mean()
    cos_image = F.cosine_similarity(image, frozen_image, dim=1, eps=1e-7).mean()
    torch.testing.assert_close(output["logits"], logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses["ce"], F.cross_entropy(logits, label), rtol=1e-5, atol=1e-6)
    expected = trainer.cfg.TRAINER.W * ((1 - cos_text) + (1 - cos_image))
    torch.testing.assert_close(losses["consistency"], expected, rtol=1e-5, atol=1e-6)


def test_gradients_reach_the_prompts_and_the_adapters_only(tiny_clip_path, descriptions):
    trainer = built(tiny_clip_path, descriptions)
    trainer.batch_idx, trainer.num_batches = 0, 2
    frozen = {k: v.clone() for k, v in trainer.model.state_dict().items() if k not in LEARNED}
    summary = trainer.forward_backward({"img": two_views(), "label": torch.tensor([0, 1, 2])})
    assert set(summary) == {"loss", "ce", "consistency", "acc"}
    graded = {n for n, p in trainer.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert graded == LEARNED == set(trainer.learned_parameters())
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in frozen.items())
    assert all(p.dtype == torch.float32 for p in trainer.learned_parameters().values())


def test_one_view_serves_both_with_a_notice(tiny_clip_path, descriptions, caplog):
    trainer = built(tiny_clip_path, descriptions)
    batch = batch_of()
    (view, frozen_view), _ = trainer.parse_batch_train(batch)
    assert view is frozen_view and torch.equal(view, batch["img"])
    assert "DATALOADER.K_TRANSFORMS 1" in caplog.text


def test_a_checkpoint_of_the_authors_code_loads_and_evaluates(tiny_clip_path, descriptions, tmp_path):
    trainer = built(tiny_clip_path, descriptions)
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) for k, v in trainer.model.state_dict().items()}
    theirs = dict(state)
    theirs["prompt_learner.token_prefix"] = torch.zeros(37, 1, 64)  # their class list
    theirs["prompt_learner.token_suffix"] = torch.zeros(37, 74, 64)
    theirs.update({f"model_distill.{k}": torch.zeros(1) for k in load_clip(tiny_clip_path).state_dict()})
    os.makedirs(tmp_path / "MultiModalPromptLearner")
    torch.save({"state_dict": theirs, "epoch": 8}, tmp_path / "MultiModalPromptLearner" / "model.pth.tar-8")
    trainer.load_model(str(tmp_path), epoch=8)
    ours = trainer.model.state_dict()
    for key in LEARNED:
        assert torch.equal(ours[key], state[key]), key
    assert not any(k.startswith("model_distill.") for k in ours)
    logits = trainer.model_inference(batch_of()["img"])
    assert logits.shape == (2, len(CLASSNAMES)) and torch.isfinite(logits).all()


def test_state_dict_keys_are_maples_plus_the_adapters(tiny_clip_path, descriptions):
    ours = set(built(tiny_clip_path, descriptions).model.state_dict())
    cfg = coprompt_cfg(tiny_clip_path)
    cfg.TRAINER.MAPLE.PREC, cfg.TRAINER.MAPLE.PROMPT_DEPTH = "fp32", 2
    maple = set(bare_trainer(MaPLe, cfg).model.state_dict())
    assert ours == maple | ADAPTER_KEYS


def test_the_same_seed_draws_as_the_authors_build(tiny_clip_path, descriptions):
    trainer = built(tiny_clip_path, descriptions, seed=5)
    ours = torch.get_rng_state()
    clip = load_clip(tiny_clip_path)
    torch.manual_seed(5)
    replay_clip_construction(clip)  # their prompted CLIP (no prompt parameters of its own)
    replay_clip_construction(clip)  # their frozen CLIP for the consistency terms
    text_w, image_w, embed = clip.ln_final.weight.shape[0], clip.visual.conv1.weight.shape[0], clip.visual.output_dim
    proj = nn.Linear(text_w, image_w)  # MaPLe's prompt learner
    text = nn.init.normal_(torch.empty(2, text_w), std=0.02)
    single = nn.Linear(text_w, image_w)
    # Adapter(512, 4), image then text, at this CLIP's embedding width
    adapters = [nn.Linear(embed, embed // 4, bias=False), nn.Linear(embed // 4, embed, bias=False)]
    adapters += [nn.Linear(embed, embed // 4, bias=False), nn.Linear(embed // 4, embed, bias=False)]
    assert torch.equal(ours, torch.get_rng_state())
    model = trainer.model
    pl = model.prompt_learner
    assert torch.equal(pl.proj.weight, proj.weight) and torch.equal(pl.compound_prompts_text[0], text)
    assert torch.equal(pl.compound_prompt_projections[0].bias, single.bias)
    mine = [model.adapter_image.fc[0], model.adapter_image.fc[2], model.adapter_text.fc[0], model.adapter_text.fc[2]]
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(mine, adapters))


def test_a_class_missing_from_the_descriptions_file_names_the_class_and_the_file(tiny_clip_path, tmp_path):
    path = write_descriptions(tmp_path / "pets.json", CLASSNAMES, drop="great pyrenees")
    with pytest.raises(ConfigError, match=f'class "great pyrenees" is not in the class descriptions file {path}'):
        built(tiny_clip_path, path)
    uneven = json.loads(open(path).read()) | {"great pyrenees": ["one sentence"]}
    (tmp_path / "pets.json").write_text(json.dumps(uneven))
    with pytest.raises(ConfigError, match='same number of descriptions .* "great_pyrenees": 1'):
        built(tiny_clip_path, path)
    with pytest.raises(UserFileNotFoundError, match="TRAINER.CoPrompt.GPT_FILE: no class descriptions file"):
        built(tiny_clip_path, str(tmp_path / "nowhere.json"))


def test_a_folder_of_the_authors_files_is_read_by_their_names(tiny_clip_path, descriptions):
    folder = os.path.dirname(descriptions)  # holds oxford_pets_prompt.json
    by_folder = built(tiny_clip_path, folder).model.frozen_text
    assert torch.equal(by_folder, built(tiny_clip_path, descriptions).model.frozen_text)
    assert by_folder.shape == (N_DESCRIPTIONS, len(CLASSNAMES), 32)


def test_without_a_file_the_hand_written_prompt_stands_in_with_a_warning(tiny_clip_path, caplog):
    trainer = built(tiny_clip_path)
    assert trainer.model.frozen_text.shape == (1, len(CLASSNAMES), 32)
    assert "TRAINER.CoPrompt.GPT_FILE is not set" in caplog.text


def test_their_per_dataset_settings_win_over_the_command_line():
    args = dict(trainer="CoPrompt", config_file=CoPrompt.card.reference_config)
    for dataset, settings in PER_DATASET.items():
        cfg = ct.get_cfg(**args, opts=["DATASET.NAME", dataset, "TRAINER.W", "3.0", "TRAINER.CoPrompt.N_CTX", "8"])
        assert all(_get(cfg, key) == value for key, value in settings.items()), dataset
    pets = ct.get_cfg(**args, opts=["DATASET.NAME", "OxfordPets"])
    assert (pets.TRAINER.CoPrompt.PROMPT_DEPTH, pets.TRAINER.CoPrompt.N_CTX, pets.TRAINER.W) == (12, 2, 0.1)
    food = ct.get_cfg(**args, opts=["DATASET.NAME", "Food101"])
    assert food.OPTIM.MAX_EPOCH == 5
    mine = ct.get_cfg(
        **args, opts=["DATASET.NAME", "OxfordPets", "TRAINER.CoPrompt.PER_DATASET", "False", "TRAINER.W", "3.0"]
    )
    assert (mine.TRAINER.CoPrompt.PROMPT_DEPTH, mine.TRAINER.W) == (9, 3.0)
    other = ct.get_cfg(trainer="MaPLe", config_file=MaPLe.card.reference_config, opts=["DATASET.NAME", "OxfordPets"])
    assert other.TRAINER.CoPrompt.PROMPT_DEPTH == 9  # another trainer's run is left alone


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.fixture(scope="module")
def clip12_path(tmp_path_factory):
    """As deep as ViT-B/16, so OxfordPets's forced PROMPT_DEPTH 12 fits."""
    path = tmp_path_factory.mktemp("clip12") / "tiny-B32-12.pt"
    save_tiny_clip(path, shape="ViT-B/32", layers=12, fmt="state_dict")
    return str(path)


def test_train_py_trains_and_evaluates_with_their_oxford_pets_settings(clip12_path, data_root, tmp_path, caplog):
    images = os.listdir(os.path.join(data_root, "oxford_pets", "images"))
    classes = sorted({f.rsplit("_", 1)[0].lower() for f in images})
    gpt = write_descriptions(tmp_path / "pets.json", classes)
    opts = ("DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "TRAINER.CoPrompt.PREC", "fp32")
    opts += ("TRAINER.CoPrompt.GPT_FILE", gpt, "INPUT.SIZE", "(224, 224)")
    cfg = CoPrompt.card.reference_config
    trained = run(data_root, tmp_path / "a", clip12_path, "CoPrompt", cfg, opts=opts)
    assert "per-dataset settings for OxfordPets" in caplog.text and "TRAINER.W 0.1" in caplog.text
    extra = ("--eval-only", "--model-dir", str(tmp_path / "a"), "--load-epoch", "1")
    again = run(data_root, tmp_path / "b", clip12_path, "CoPrompt", cfg, extra=extra, opts=opts)
    assert again["metrics"] == trained["metrics"]
    sd = torch.load(tmp_path / "a" / "MultiModalPromptLearner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert ADAPTER_KEYS <= set(sd) and "prompt_learner.compound_prompts_text.10" in sd  # depth 12


def test_the_base2new_scripts_run_it_and_results_print_its_published_row(tmp_path, stub, capsys):  # noqa: F811
    import results
    from tests.reporting.test_results import _b2n
    from tests.reporting.test_scripts import _arg, _run

    env = dict(TRAINER="CoPrompt", CFG="coprompt")
    _, (train,) = _run("cocoop/base2new_train.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    _, (_, test) = _run("cocoop/base2new_test.sh", "dtd", "1", stub=stub, cwd=tmp_path, **env)
    assert _arg(train, "--config-file") == "configs/trainers/CoPrompt/coprompt.yaml"
    assert _arg(test, "--load-epoch") == "8" and _arg(test, "--output-dir").endswith(
        "test_new/dtd/shots_16/CoPrompt/coprompt/seed1"
    )
    root = tmp_path / "output"
    _b2n(root, "dtd", 1, 60.0, 80.0, trainer="CoPrompt", cfg="coprompt", dataset="DescribableTextures")
    assert results.main([str(root), "--out", str(tmp_path / "tables"), "--paper"]) == 0
    assert "(paper 84.00" in capsys.readouterr().out


def test_a_resume_must_keep_its_keys_outside_its_node():
    """TRAINER.W, TRAINER.DISTILL (its `learning_keys`) and DATALOADER.K_TRANSFORMS change what it learns."""
    from dasslite.engine.resume_check import learning_key_changes

    old = ct.get_cfg(trainer="CoPrompt", config_file=CoPrompt.card.reference_config)
    new = old.clone()
    new.TRAINER.W, new.TRAINER.DISTILL, new.DATALOADER.K_TRANSFORMS = 2.0, "mse", 1
    changes = learning_key_changes(old, new, CoPrompt.config_node, CoPrompt.learning_keys)
    assert [k for k, _, _ in changes] == ["DATALOADER.K_TRANSFORMS", "TRAINER.W", "TRAINER.DISTILL"]
    assert [k for k, _, _ in learning_key_changes(old, new, "MAPLE")] == ["DATALOADER.K_TRANSFORMS"]
