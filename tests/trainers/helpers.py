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
