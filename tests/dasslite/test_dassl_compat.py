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


# Every dassl import line of DePT's files (Koorye/DePT: train.py, trainers/, datasets/, tests/), as written.
DEPT_IMPORTS = """
from dassl.config import get_cfg_default, clean_cfg
from dassl.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from dassl.engine import TRAINER_REGISTRY
from dassl.engine import build_trainer
from dassl.engine.trainer import MetricMeter, AverageMeter, SummaryWriter
from dassl.engine.trainer import TrainerX as TrainerX_
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler
from dassl.optim.radam import RAdam
from dassl.utils import listdir_nohidden, mkdir_if_missing
from dassl.utils import load_pretrained_weights, load_checkpoint
from dassl.utils import read_json, write_json, mkdir_if_missing
from dassl.utils import set_random_seed, collect_env_info
from dassl.utils import setup_logger, set_random_seed, collect_env_info
from dassl.utils.tools import mkdir_if_missing
"""


# Every dassl import line of MMA's files (ZjjConan/Multi-Modal-Adapter: train.py, trainers/mmadapter.py,
# datasets/), as written.
MMA_IMPORTS = """
from dassl.config import get_cfg_default
from dassl.data import DatasetWrapper
from dassl.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from dassl.data.transforms import build_transform
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.engine import build_trainer
from dassl.optim import build_optimizer, build_lr_scheduler
from dassl.utils import check_isfile, listdir_nohidden
from dassl.utils import listdir_nohidden, mkdir_if_missing
from dassl.utils import load_pretrained_weights, load_checkpoint
from dassl.utils import read_json, write_json, mkdir_if_missing
from dassl.utils import setup_logger, set_random_seed, collect_env_info
"""


# Every dassl import line of CoPrompt's files (ShuvenduRoy/CoPrompt: train.py, trainers/, datasets/), as written.
COPROMPT_IMPORTS = """
from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.engine import build_trainer
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import listdir_nohidden
from dassl.utils import listdir_nohidden, mkdir_if_missing
from dassl.utils import load_checkpoint, load_pretrained_weights
from dassl.utils import mkdir_if_missing
from dassl.utils import read_json, mkdir_if_missing
from dassl.utils import read_json, write_json, mkdir_if_missing
from dassl.utils import set_random_seed, setup_logger
"""


@pytest.mark.parametrize(
    "line",
    DEPT_IMPORTS.strip().splitlines() + MMA_IMPORTS.strip().splitlines() + COPROMPT_IMPORTS.strip().splitlines(),
)
def test_the_authors_dassl_imports_work_with_dasslite(line):
    exec(line.replace("dassl", "dasslite"), {})


def test_clean_cfg_keeps_only_the_named_trainer_node():
    from yacs.config import CfgNode as CN

    from dasslite.config import clean_cfg

    cfg = get_cfg_default()
    cfg.TRAINER.COOP, cfg.TRAINER.MAPLE = CN({"N_CTX": 16}), CN({"N_CTX": 2})
    clean_cfg(cfg, "CoOp")
    assert set(cfg.TRAINER) == {"NAME", "COOP"}


def dassl_radam_steps(p, grads, lr, betas, eps, wd):
    """Dassl's RAdam update (dassl/optim/radam.py, degenerated_to_sgd=True), written out for one tensor."""
    p, m, v = p.clone(), torch.zeros_like(p), torch.zeros_like(p)
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        v = b2 * v + (1 - b2) * g * g
        m = b1 * m + (1 - b1) * g
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if wd:
            p = p - wd * lr * p
        if rho >= 5:
            rect = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
            p = p - lr * (rect * (1 - b2**t) ** 0.5 / (1 - b1**t)) * m / (v.sqrt() + eps)
        else:
            p = p - lr / (1 - b1**t) * m
    return p


def test_radam_is_dassls_with_decoupled_weight_decay():
    from dasslite.optim.radam import RAdam

    g = torch.Generator().manual_seed(0)
    start = torch.randn(5, dtype=torch.float64, generator=g)
    grads = [torch.randn(5, dtype=torch.float64, generator=g) for _ in range(8)]  # past the SGD-like steps
    p = nn.Parameter(start.clone())
    optim = RAdam([p], lr=0.01, weight_decay=0.1)
    for grad in grads:
        p.grad = grad.clone()
        optim.step()
    expected = dassl_radam_steps(start, grads, 0.01, (0.9, 0.999), 1e-8, 0.1)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-12)
