"""A trainer written the Dassl way ports by changing `dassl` to `dasslite` in its imports: the names it
imports exist with Dassl's semantics, and its LR schedule advances once per epoch."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dasslite.config import allow_bool, get_cfg_default, merge_from_file_checked, merge_from_list_checked
from dasslite.engine import TRAINER_REGISTRY, TrainerX, build_trainer
from dasslite.metrics import compute_accuracy
from dasslite.optim import build_lr_scheduler, build_optimizer
from dasslite.utils import count_num_param, load_checkpoint, load_pretrained_weights, save_checkpoint

from .toy import toy_cfg

# Dassl's rates for sgd at LR 2e-3, cosine over 4 epochs after one constant warm-up epoch at 1e-5 (the
# KgCoOp / ProGrad recipe), stepped once per epoch: the cosine runs one epoch late.
DASSL_RATES = [1e-5, 2e-3, 0.5 * 2e-3 * (1 + math.cos(math.pi / 4)), 1e-3]


class _DasslStyle(TrainerX):
    """As the authors' trainers are written: own update, LR stepped on the last batch."""

    def build_model(self):
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, self.num_classes))
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("linear", self.model, self.optim, self.sched)
        self.rates = []

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if self.batch_idx == 0:
            self.rates.append(self.get_current_lr())
        summary = {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.step_lr()
        return summary

    def step_lr(self):
        self.update_lr()


@TRAINER_REGISTRY.register()
class DasslStyleUpdateLR(_DasslStyle):
    pass


@TRAINER_REGISTRY.register()
class DasslStyleSchedStep(_DasslStyle):
    def step_lr(self):  # KgCoOp's way
        self.sched.step()


@TRAINER_REGISTRY.register()
class EngineStepsLR(_DasslStyle):
    def step_lr(self):  # leaves it to the engine
        pass


@pytest.mark.parametrize("trainer", ["DasslStyleUpdateLR", "DasslStyleSchedStep", "EngineStepsLR"])
def test_one_lr_step_per_epoch_gives_dassls_rates(toy_root, tmp_path, trainer):
    cfg = toy_cfg(toy_root, tmp_path, OPTIM__LR=2e-3, OPTIM__WARMUP_CONS_LR=1e-5, TRAINER__NAME=trainer)
    cfg.freeze()
    t = build_trainer(cfg)
    t.train()
    assert t.rates == pytest.approx(DASSL_RATES, rel=1e-6)
    saved = load_checkpoint(str(tmp_path / "linear" / "model.pth.tar-4"))
    assert saved["epoch"] == 4 and saved["scheduler"]["_step_count"] == t.sched._step_count


def test_compute_accuracy_is_dassls_topk_in_percent():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    label = torch.tensor([2, 0, 1, 1])
    top1, top2 = compute_accuracy((logits, "extra"), label, topk=(1, 2))
    assert top1.shape == (1,) and top1.item() == pytest.approx(25.0)
    assert top2.item() == pytest.approx(75.0)


def test_load_pretrained_weights_copies_the_matching_tensors(tmp_path):
    source = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    target = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))  # second layer: another size
    state = {"module." + k: v for k, v in source.state_dict().items()}
    save_checkpoint({"state_dict": state, "epoch": 1}, str(tmp_path), model_name="w.pth")
    before = target[1].weight.clone()
    load_pretrained_weights(target, str(tmp_path / "w.pth"))
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].weight, before)
    assert count_num_param(target) == 4 * 3 + 3 + 3 * 5 + 5


def test_a_bool_ctx_init_from_the_authors_yamls_merges(tmp_path):
    cfg = get_cfg_default()
    from yacs.config import CfgNode as CN

    cfg.TRAINER.DEMO = CN()
    cfg.TRAINER.DEMO.CTX_INIT = ""
    cfg.TRAINER.DEMO.N_CTX = 16
    yaml = tmp_path / "theirs.yaml"
    yaml.write_text("TRAINER:\n  DEMO:\n    CTX_INIT: True\n")
    with pytest.raises(ValueError, match="TRAINER.DEMO.CTX_INIT"):  # not declared: yacs' type rule holds
        merge_from_file_checked(cfg, str(yaml))
    allow_bool("TRAINER.DEMO.CTX_INIT")
    merge_from_file_checked(cfg, str(yaml))
    assert cfg.TRAINER.DEMO.CTX_INIT is True
    merge_from_list_checked(cfg, ["TRAINER.DEMO.CTX_INIT", "a photo of a"])
    assert cfg.TRAINER.DEMO.CTX_INIT == "a photo of a"
    with pytest.raises(ValueError, match="TRAINER.DEMO.N_CTX"):  # other keys keep their type
        merge_from_list_checked(cfg, ["TRAINER.DEMO.N_CTX", "False"])


def test_dassl_module_paths_offer_the_names_the_authors_files_import():
    import dasslite.data as data
    import dasslite.data.datasets as datasets
    import dasslite.utils as utils

    assert {"DATASET_REGISTRY", "Datum", "DatasetBase"} <= set(dir(datasets))
    assert {"DataManager", "DatasetWrapper"} <= set(dir(data))
    for name in ("mkdir_if_missing", "listdir_nohidden", "read_json", "write_json", "check_isfile"):
        assert callable(getattr(utils, name))
    for name in ("setup_logger", "set_random_seed", "collect_env_info", "load_checkpoint", "save_checkpoint"):
        assert callable(getattr(utils, name))
