"""Several processes under torchrun: joining the process group, and the few collective steps training needs.

Every function takes the world size and does nothing collective for a single process, so the training loop
reads the same with one process or many.
"""

import contextlib
import math
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from colorization.data import has_images
from colorization.devices import resolve_device


def setup(device_spec: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); under torchrun (WORLD_SIZE > 1) joins the process group, one GPU each."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1, resolve_device(device_spec)
    local_rank = int(os.environ["LOCAL_RANK"])
    if resolve_device(device_spec).type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return dist.get_rank(), world, device


def every_process_has_a_batch(batch, device, world: int) -> bool:
    """False when this or any other process got a batch without images (every one unreadable). All processes
    then skip the step together: a DDP backward that one process leaves out would hang the others."""
    if world == 1:
        return has_images(batch)
    has_batch = torch.tensor(float(has_images(batch)), device=device)
    dist.all_reduce(has_batch, op=dist.ReduceOp.MIN)
    return bool(has_batch.item())


def global_sums(values: list, device, world: int) -> list:
    """Each value summed over all processes."""
    if world == 1:
        return values
    sums = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    return [type(value)(total) for value, total in zip(values, sums.tolist())]


def global_mean(total: float, count: int, device, world: int) -> float:
    total, count = global_sums([total, count], device, world)
    return total / count if count else math.nan


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def no_sync_unless(model, sync: bool):
    """DDP's no_sync() unless sync: gradients of accumulated micro-batches are averaged once, at the last."""
    return model.no_sync() if isinstance(model, DistributedDataParallel) and not sync else contextlib.nullcontext()
