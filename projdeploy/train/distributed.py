"""torch.distributed helpers: init from torchrun's environment, wrap with DDP or FSDP.

    torchrun --nproc_per_node 2 -m projdeploy.cli pretrain --model pn --preset tiny --data digits --out runs/pn

Backend: NCCL when CUDA is available, else gloo (CPU). The training loop
splits each global batch over ranks, so N processes with global batch B
follow the same trajectory as one process with batch B (float tolerance).
"""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError

STRATEGIES = ("ddp", "fsdp")


def world_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed() -> tuple[int, int, torch.device]:
    """Join the process group torchrun set up (no-op for a single process) -> (rank, world, device)."""
    import torch.distributed as dist

    if world_from_env() <= 1:
        return 0, 1, torch.device("cpu")
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cpu")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return rank, world, device


def wrap_model(model: torch.nn.Module, strategy: str = "ddp", device: torch.device | None = None):
    """The module ``loss_fn`` should call: DDP (replicated) or FSDP (sharded parameters)."""
    import torch.distributed as dist

    if strategy not in STRATEGIES:
        raise ConfigError("pretrain", "strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device is not None and device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    # FSDP shards parameters and optimizer state over ranks; our checkpoints are written by rank 0 from
    # full tensors, which would need a collective gather inside the training loop's checkpoint step.
    raise ConfigError("pretrain", "strategy", "fsdp is not supported yet: checkpoints need a full-state gather "
                      "that the training loop does not do; use ddp (every model preset fits one device)")


def is_main() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def measure_peak_flops(seconds: float = 0.3, n: int = 256) -> float:
    """FLOP/s of a dense float32 matmul on this process (the MFU denominator, an estimate)."""
    import time

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0)
