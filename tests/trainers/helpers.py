"""Config and model builders shared by the trainer tests."""

from coop_toolkit import trainers
from coop_toolkit.trainers.clip_backbone import load_clip
from dasslite.config import get_cfg_default

CLASSNAMES = ["abyssinian", "american_bulldog", "beagle", "great_pyrenees", "yorkshire_terrier"]


def make_cfg(backbone, **opts):
    """Engine defaults + trainer nodes, with `opts` given as {"TRAINER.COOP.N_CTX": 4, ...}."""
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.TRAINER.COOP.PREC = cfg.TRAINER.COCOOP.PREC = "fp32"
    for key, value in opts.items():
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


def clip_fp32(path):
    return load_clip(path, precision="fp32")
