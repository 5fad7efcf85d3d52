"""torch.distributed helpers; everything here works (as one process) when DDP is not in use."""
import logging
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


def is_dist():
    return dist.is_available() and dist.is_initialized()


def get_world_size():
    return dist.get_world_size() if is_dist() else 1


def get_rank():
    return dist.get_rank() if is_dist() else 0


def is_main_process():
    """Only rank 0 writes checkpoints, metrics.json and log files."""
    return get_rank() == 0


def init_distributed():
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op otherwise.

    Returns True when running distributed. Each process uses the GPU of its LOCAL_RANK.
    """
    if is_dist():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True
