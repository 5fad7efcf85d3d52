from .dist import get_rank, get_world_size, init_distributed, is_main_process
from .io import atomic_write, mkdir_if_missing, read_json, write_json
from .logger import setup_logger
from .seed import get_rng_state, set_random_seed, set_rng_state
from .tools import collect_env_info
from .torchtools import check_isfile, count_num_param, listdir_nohidden, load_pretrained_weights, resume_from_checkpoint

# Dassl has these in dassl.utils; here they live in the engine (which imports this package), so they
# are looked up on first use.
_FROM_ENGINE = ("load_checkpoint", "save_checkpoint")


def __getattr__(name):
    if name in _FROM_ENGINE:
        from ..engine import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "atomic_write",
    "mkdir_if_missing",
    "read_json",
    "write_json",
    "setup_logger",
    "get_rng_state",
    "set_random_seed",
    "set_rng_state",
    "collect_env_info",
    "check_isfile",
    "count_num_param",
    "listdir_nohidden",
    "load_pretrained_weights",
    "resume_from_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]
