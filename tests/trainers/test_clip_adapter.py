"""CLIP-Adapter: logits from the authors' formula, only the adapter learns, their checkpoint loads."""

import pytest
import torch
import torch.nn.functional as F

from coop_toolkit.trainers.clip_adapter import CLIPAdapter
from dasslite.engine.build import TRAINER_REGISTRY
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of, clip_fp32, make_cfg


@pytest.fixture(scope="module")
def trainer(tiny_clip_path):
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPAdapter, make_cfg(tiny_clip_path, **{"DATASET.NAME": "OxfordPets"}))
    with torch.no_grad():  # a non-trivial adapter: ReLU after the last linear leaves little otherwise
        for p in trainer.model.adapter.parameters():
            p.normal_(0, 0.3)
    return trainer


def test_registered_under_the_authors_name_with_their_sizes(trainer):
    assert TRAINER_REGISTRY.get("CLIP_Adapter") is CLIPAdapter
    width = trainer.model.image_encoder.output_dim  # the authors hard-code RN50's 1024
    state = trainer.get_model_names(), trainer._models["clip_adapter"].state_dict()
    assert state[0] == ["clip_adapter"]
    assert {k: tuple(v.shape) for k, v in state[1].items()} == {
        "fc.0.weight": (width // 4, width),
        "fc.2.weight": (width, width // 4),
    }


def direct_logits(clip, adapter_state, image, ratio=0.2):
    """The authors' forward written out: raw image features, adapter with ReLU after both linears, the
    residual mix, then both sides normalised; the pets template for the classes."""
    f = clip.visual(image)
    x = F.relu(F.relu(f @ adapter_state["fc.0.weight"].t()) @ adapter_state["fc.2.weight"].t())
    f = ratio * x + (1 - ratio) * f
    f = f / f.norm(dim=-1, keepdim=True)
    prompts = [f"a photo of a {c.replace('_', ' ')}, a type of pet." for c in CLASSNAMES]
    from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

    t = clip.encode_text(tokenize(prompts))
    t = t / t.norm(dim=-1, keepdim=True)
    return clip.logit_scale.exp() * f @ t.t()


def test_logits_equal_the_authors_formula(trainer, tiny_clip_path):
    image = batch_of()["img"]
    trainer.set_model_mode("eval")
    expected = direct_logits(clip_fp32(tiny_clip_path), trainer.model.adapter.state_dict(), image)
    got = trainer.model_inference(image)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    features = trainer.image_features(image)
    protocol = trainer.logit_scale() * features @ trainer.class_features().t()
    torch.testing.assert_close(protocol, got, rtol=0, atol=1e-5)
    raw = trainer.image_features(image, normalize=False)
    torch.testing.assert_close(raw / raw.norm(dim=-1, keepdim=True), features)


def test_gradients_reach_only_the_adapter(tiny_clip_path):
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPAdapter, make_cfg(tiny_clip_path))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.set_model_mode("train")
    trainer.forward_backward(batch_of())
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad == {"adapter.fc.0.weight", "adapter.fc.2.weight"}
    changed = {k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed <= with_grad and changed


def test_a_checkpoint_in_the_authors_layout_loads(trainer, tmp_path):
    """Dassl's file as the authors' trainer writes it: OUTPUT_DIR/clip_adapter/model-best.pth.tar holding
    state_dict (fc.0.weight, fc.2.weight), epoch, optimizer, scheduler and val_result."""
    width = trainer.model.image_encoder.output_dim
    generator = torch.Generator().manual_seed(3)
    state = {
        "fc.0.weight": torch.randn(width // 4, width, generator=generator),
        "fc.2.weight": torch.randn(width, width // 4, generator=generator),
    }
    sgd = torch.optim.SGD([torch.nn.Parameter(v.clone()) for v in state.values()], lr=0.002, momentum=0.9)
    (tmp_path / "clip_adapter").mkdir()
    torch.save(
        {"state_dict": state, "epoch": 50, "optimizer": sgd.state_dict(), "scheduler": None, "val_result": 61.3},
        tmp_path / "clip_adapter" / "model-best.pth.tar",
    )
    assert trainer.load_model(str(tmp_path)) == 50
    for key, value in trainer._models["clip_adapter"].state_dict().items():
        assert torch.equal(value, state[key]), key
