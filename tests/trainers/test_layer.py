"""The trainer layer: a method's own config node, declared learned parameters, named loss terms, an
adapter on the prompt-free base, the features protocol, and the shared hand-written-prompt class features."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from coop_toolkit import trainers
from coop_toolkit.trainers import handwritten
from coop_toolkit.trainers.coop import CoOp
from coop_toolkit.trainers.handwritten import handwritten_class_features
from dasslite.config import get_cfg_default
from dasslite.engine.build import TRAINER_REGISTRY
from tests.adapter_example import AdapterTrainer
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of, clip_fp32, make_cfg


@TRAINER_REGISTRY.register()
class LayerTestCoOp(CoOp):
    """A successor with a node of its own, learning a parameter inside the text encoder too."""

    config_node = "LAYERTEST"

    @classmethod
    def add_config(cls, cfg):
        super().add_config(cfg)
        if "LAYERTEST" not in cfg.TRAINER:
            cfg.TRAINER.LAYERTEST = cfg.TRAINER.COOP.clone()
            cfg.TRAINER.LAYERTEST.N_CTX = 3
            cfg.TRAINER.LAYERTEST.PREC = "fp32"
            cfg.TRAINER.LAYERTEST.W = 0.5

    def learned_parameters(self):
        learned = super().learned_parameters()
        learned["text_encoder.ln_final.weight"] = self.model.text_encoder.ln_final.weight
        return learned

    def saved_module(self):
        return self.model

    def compute_losses(self, output, label):
        ce = F.cross_entropy(output.float(), label)
        return OrderedDict(ce=ce, half_ce=self.opts.W * ce)


def test_extend_cfg_adds_the_node_of_every_registered_trainer():
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    assert {"COOP", "COCOOP", "LAYERTEST"} <= set(cfg.TRAINER)
    assert cfg.TRAINER.LAYERTEST.N_CTX == 3 and cfg.TRAINER.COOP.N_CTX == 16
    trainers.extend_cfg(cfg)  # a second call leaves the nodes as they are
    assert cfg.TRAINER.LAYERTEST.N_CTX == 3


@pytest.fixture(scope="module")
def trainer(tiny_clip_path):
    return bare_trainer(LayerTestCoOp, make_cfg(tiny_clip_path))


def test_a_successor_builds_from_its_own_node_not_coops(trainer):
    assert trainer.cfg.TRAINER.COOP.N_CTX == 16
    assert trainer.model.prompt_learner.ctx.shape == (3, 64)


def test_declared_parameters_inside_the_encoder_learn_and_are_saved(trainer):
    learned = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert learned == {"prompt_learner.ctx", "text_encoder.ln_final.weight"}
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.forward_backward(batch_of())
    saved = trainer._models["prompt_learner"].state_dict()
    changed = {k for k, v in saved.items() if not torch.equal(v, before[k])}
    assert changed == {"prompt_learner.ctx", "text_encoder.ln_final.weight"}


def test_a_learned_parameter_outside_the_saved_module_is_an_error(tiny_clip_path):
    class Leaky(LayerTestCoOp):
        def saved_module(self):
            return self.model.prompt_learner

    with pytest.raises(ValueError, match=r"text_encoder\.ln_final\.weight.*saved_module"):
        bare_trainer(Leaky, make_cfg(tiny_clip_path))


def test_each_loss_term_is_logged_and_the_update_minimises_their_sum(trainer):
    batch = batch_of(seed=1)
    ctx = trainer.model.prompt_learner.ctx
    start = ctx.detach().clone()
    with torch.no_grad():
        logits = trainer.model(batch["img"])
    ce = F.cross_entropy(logits, batch["label"]).item()
    summary = trainer.forward_backward(batch)
    assert summary.keys() == {"loss", "ce", "half_ce", "acc"}
    assert summary["ce"] == pytest.approx(ce, rel=1e-5)
    assert summary["half_ce"] == pytest.approx(0.5 * ce, rel=1e-5)
    assert summary["loss"] == pytest.approx(1.5 * ce, rel=1e-5)
    moved = ctx.detach() - start
    # SGD's step from the same point: lr * (grad of 1.5 * CE + weight decay), momentum from the earlier step
    ctx.data.copy_(start)
    trainer.model.zero_grad()
    (1.5 * F.cross_entropy(trainer.model(batch["img"]), batch["label"])).backward()
    assert torch.dot(moved.flatten(), -ctx.grad.flatten()) > 0  # it descended the summed loss


def test_handwritten_features_equal_clips_own_encoding_and_are_computed_once(tiny_clip_path, monkeypatch):
    clip = clip_fp32(tiny_clip_path)
    templates = ["a photo of a {}.", "itap of a {}."]
    calls = []
    encode = handwritten._encode
    monkeypatch.setattr(handwritten, "_encode", lambda *a: calls.append(1) or encode(*a))
    ours = handwritten_class_features(clip, CLASSNAMES, templates)
    again = handwritten_class_features(clip, CLASSNAMES, templates)
    assert again is ours and len(calls) == 1
    handwritten_class_features(clip, CLASSNAMES[:2], templates)  # another class list: computed for it
    assert len(calls) == 2

    with torch.no_grad():  # the original: CLIP's full 77-token encode_text per template, averaged
        mean = 0
        for t in templates:
            f = clip.encode_text(tokenize([t.format(c.replace("_", " ")) for c in CLASSNAMES]))
            mean = mean + f / f.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(ours, mean / mean.norm(dim=-1, keepdim=True), atol=1e-5, rtol=1e-5)


def test_zero_shot_reads_its_own_node(tiny_clip_path):
    from coop_toolkit.trainers.zsclip import ZeroshotCLIP

    cfg = make_cfg(tiny_clip_path)
    cfg.TRAINER.COOP.PREC = "fp64"
    with pytest.raises(ValueError, match="TRAINER.COOP.PREC"):
        bare_trainer(ZeroshotCLIP, cfg)


@TRAINER_REGISTRY.register()
class LayerTestAdapter(AdapterTrainer):
    config_node = "LAYERTEST_ADAPTER"


def test_an_adapter_needs_no_prompt_default_and_only_its_declared_parameters_learn(tiny_clip_path):
    trainer = bare_trainer(LayerTestAdapter, make_cfg(tiny_clip_path))
    assert trainer.get_model_names() == ["model"] and trainer.checkpoint_ignore_keys == ()
    assert trainer.saved_module() is trainer.model.adapter  # the deepest module holding what learns
    frozen = {k: v.clone() for k, v in trainer.model.state_dict().items() if not k.startswith("adapter.")}
    adapter = {k: v.clone() for k, v in trainer.model.adapter.state_dict().items()}
    trainer.forward_backward(batch_of())
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in frozen.items())
    moved = [k for k, v in trainer.model.adapter.state_dict().items() if not torch.equal(v, adapter[k])]
    assert sorted(moved) == sorted(adapter)
    assert set(trainer._models["model"].state_dict()) == set(adapter)


def test_the_features_protocol_gives_the_logits_of_every_layer_trainer(tiny_clip_path):
    images = batch_of(seed=2)["img"]
    for trainer_cls in (LayerTestAdapter, LayerTestCoOp):
        trainer = bare_trainer(trainer_cls, make_cfg(tiny_clip_path))
        trainer.set_model_mode("eval")
        raw = trainer.image_features(images, normalize=False)
        features = trainer.image_features(images)
        torch.testing.assert_close(features, raw / raw.norm(dim=-1, keepdim=True))
        expected = trainer.logit_scale() * features @ trainer.class_features().t()
        torch.testing.assert_close(trainer.model_inference(images), expected, atol=1e-5, rtol=1e-5)
        assert trainer.logit_bias() is None
