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


def launched_by_torchrun():
    """torchrun (torch.distributed.run) sets these for every process, also with --nproc_per_node 1."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_distributed(use_cuda=True):
    """Join the process group when launched by torchrun (any world size); a no-op otherwise.

    Returns True when running distributed. Each process uses the GPU of its LOCAL_RANK (nccl), or
    the CPU (gloo). A torchrun run with one process is distributed too: it shards its training data
    with a DistributedSampler, exactly as N processes do, so 1 and N processes give the same batches.
    `use_cuda=False` (the config's USE_CUDA) keeps to gloo and the CPU on a machine with GPUs.
    """
    if is_dist():
        return True
    if not launched_by_torchrun():
        return False
    cuda = use_cuda and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def describe_distributed():
    """The log line of a torchrun run ("Distributed: world size 2, backend gloo, ..."), or None."""
    if not is_dist():
        return None
    return (
        f"Distributed: world size {get_world_size()}, backend {dist.get_backend()}, "
        f"DATALOADER.TRAIN_X.BATCH_SIZE is the global batch"
    )


def destroy_distributed():
    """Leave the process group (after a successful run), as torch asks of every process that joined."""
    if is_dist():
        dist.destroy_process_group()


def mean_over_processes(values, device):
    """The mean of each float in `values` (a dict) over the processes; unchanged when not distributed.

    Used for what is logged only (the loss and accuracy of the global batch, not of rank 0's share).
    """
    if not is_dist():
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / get_world_size()).tolist()))


def max_over_processes(value):
    """The largest of the integer `value` over the processes; `value` itself, with no communication,
    when not distributed. The tensor lives on the group's device (nccl reduces CUDA tensors only)."""
    if not is_dist():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def wait_for_other_processes():
    """A barrier (no-op when not distributed)."""
    if is_dist():
        dist.barrier()


def wrap_ddp(module, device):
    """`module` in DistributedDataParallel when running distributed (else `module` itself).

    DDP averages the gradients of the parameters that require them over the processes; frozen
    parameters are ignored. Buffers are not re-broadcast every forward: they are never trained and
    every rank builds them identically (DDP still syncs parameters and buffers from rank 0 once).
    """
    if not is_dist():
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    )
    return DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)
