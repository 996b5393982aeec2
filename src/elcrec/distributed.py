"""Several processes, one training run (``torchrun``): the few collective
operations the losses and the trainer need.  With one process every function
here returns its input unchanged, so single-process runs compute exactly what
they always did.

The losses are written for the *global* batch: each rank holds B/N of its
rows, and a term that averages over rows is rescaled so that DDP's average of
the ranks' gradients is the gradient of the one-process loss over all B rows
(``global_mean``); contrastive negatives are gathered from every rank with
their gradients (``gather``, whose backward sums every rank's gradient with
respect to each rank's rows before handing a rank its own: a gather whose
backward keeps only the local slice of the gradient drops the other ranks'
contributions, a known bug of several SimCLR-style codebases).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def init_from_environment(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (WORLD_SIZE > 1 in the
    environment): gloo on CPU, NCCL on CUDA.  False when run alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def sum_int(value: int) -> int:
    """An integer summed over the ranks."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.long)
    dist.all_reduce(t)
    return int(t.item())


def global_mean(local_mean: torch.Tensor, local_count: int) -> torch.Tensor:
    """A loss that is a mean over this rank's ``local_count`` rows, rescaled
    so that the ranks' average (DDP's) is the mean over every rank's rows."""
    if not active():
        return local_mean
    return local_mean * (local_count * world_size() / max(sum_int(local_count), 1))


def gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every rank's rows of ``x`` in rank order (ranks may hold different
    numbers of rows), with gradients flowing back to each rank's own rows;
    and where this rank's rows start."""
    if not active():
        return x, 0
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(world_size())]
    dist.all_gather(counts, torch.tensor([x.shape[0]], dtype=torch.long))
    counts = [int(c.item()) for c in counts]
    padded = torch.zeros((max(counts), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded = torch.cat([x, padded[x.shape[0] :]])
    parts = _AllGather.apply(padded)
    return torch.cat([p[:n] for p, n in zip(parts, counts)]), sum(counts[: rank()])


class _AllGather(torch.autograd.Function):
    """all_gather forward; backward: the gradients every rank computed for every
    rank's rows, summed over ranks, and this rank's share of them returned."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads):
        summed = torch.stack(grads)
        dist.all_reduce(summed)
        return summed[rank()]


def gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order (one element when run alone)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def my_share(items: list) -> list:
    """This rank's share of a list of work items (every world_size-th one)."""
    return items[rank() :: world_size()]


def assemble(n: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows ``values`` of an (n, ...) array computed by this rank at ``index``,
    combined with every other rank's: each row comes from exactly one rank."""
    if not active():
        out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
        out[index] = values
        return out
    parts = gather_objects((index, values))
    widest = max((val for _, val in parts), key=len)  # a rank may have had no rows
    out = np.empty((n, *widest.shape[1:]), dtype=widest.dtype)
    for idx, val in parts:
        if len(idx):
            out[idx] = val
    return out


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
    if active():
        dist.barrier()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters on every rank (after a hook changed them in place)."""
    if active():
        with torch.no_grad():
            for p in module.parameters():
                dist.broadcast(p.data, src=0)
