"""Config and model builders shared by the trainer tests."""

from coop_toolkit import trainers
from coop_toolkit.trainers.clip_backbone import load_clip
from dasslite.config import get_cfg_default
from tests.helpers import set_keys

# A CoCoOp prompt learner's state dict: the context, the frozen prompt buffers and the Meta-Net.
COCOOP_STATE_KEYS = {"ctx", "token_prefix", "token_suffix"} | {
    f"meta_net.linear{i}.{p}" for i in (1, 2) for p in ("weight", "bias")
}
CLASSNAMES = ["abyssinian", "american_bulldog", "beagle", "great_pyrenees", "yorkshire_terrier"]


def make_cfg(backbone, **opts):
    """Engine defaults + trainer nodes, with `opts` given as {"TRAINER.COOP.N_CTX": 4, ...}."""
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.TRAINER.COOP.PREC = cfg.TRAINER.COCOOP.PREC = "fp32"
    return set_keys(cfg, opts)


def clip_fp32(path):
    return load_clip(path, precision="fp32")


def bare_trainer(trainer_cls, cfg, classnames=CLASSNAMES):
    """`trainer_cls` with its model built on CPU, without a dataset (the engine's data step is skipped)."""
    from types import SimpleNamespace

    import torch

    from dasslite.engine.trainer import TrainerBase

    trainer = trainer_cls.__new__(trainer_cls)
    TrainerBase.__init__(trainer)
    trainer.cfg, trainer.device = cfg, torch.device("cpu")
    trainer.epoch, trainer.max_epoch = 0, 1
    trainer.dm = SimpleNamespace(dataset=SimpleNamespace(classnames=list(classnames), dataset_name=cfg.DATASET.NAME))
    trainer.check_cfg(cfg)
    trainer.build_model()
    return trainer


N_CLS = len(CLASSNAMES)


def batch_of(n=2, n_cls=N_CLS, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return {"img": torch.randn(n, 3, 224, 224, generator=g), "label": torch.arange(n) % n_cls}
