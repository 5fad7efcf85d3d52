from .dist import get_rank, get_world_size, init_distributed, is_main_process
from .io import atomic_write, mkdir_if_missing, read_json, write_json
from .logger import setup_logger
from .seed import get_rng_state, set_random_seed, set_rng_state
from .tools import collect_env_info

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
]
