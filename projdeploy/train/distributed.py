"""torch.distributed helpers: init from torchrun's environment, wrap with DDP or FSDP.

    torchrun --nproc_per_node 2 -m projdeploy.cli pretrain --model pn --preset tiny --data digits --out runs/pn
    torchrun --nproc_per_node 2 -m projdeploy.cli pretrain --strategy fsdp --model dense --data pycode --out runs/big

Backend: NCCL when CUDA is available, else gloo (CPU). The training loop
splits each global batch over ranks, so N processes with global batch B
follow the same trajectory as one process with batch B (float tolerance).
FSDP (FSDP2 ``fully_shard``) shards every transformer block and the root
(embeddings, head, PN bases) over ranks; checkpoints gather full tensors
(``full_state_dict``), so they are identical in format to DDP/single-process ones.
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
    return shard_model(model)


def shard_model(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2: shard each block of ``model.model.layers`` (own all-gather group), then the root, in place.

    The root group holds everything else (embeddings, final norm, head; a PN's bases, mixing and codes,
    which its forward reads outside the blocks). Returns ``model`` itself, now an ``FSDPModule``.
    """
    from torch.distributed.fsdp import fully_shard

    layers = getattr(getattr(model, "model", None), "layers", None)
    for block in layers or ():
        fully_shard(block)
    fully_shard(model)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    """True for a module ``shard_model`` (FSDP2) has wrapped."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def full_states(model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Collective (every rank must call): full, unsharded CPU model state and optimizer state by parameter name."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    msd = get_model_state_dict(model, options=opts)
    osd = get_optimizer_state_dict(model, opt, options=opts)
    return msd, osd.get("state", {})  # with cpu_offload only rank 0 receives the tensors


def load_full_states(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer | None,
    msd: dict | None,
    opt_state: dict | None,
    names: list[str],
) -> None:
    """Collective: shard full model (and optimizer, keyed by parameter name) state back onto ``model``/``opt``."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    opts = StateDictOptions(full_state_dict=True, strict=False)
    if msd is not None:
        set_model_state_dict(model, msd, options=opts)
    if opt is None or not opt_state:
        return
    groups, i = [], 0
    for g in opt.param_groups:
        n = len(g["params"])
        groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": names[i : i + n]})
        i += n
    set_optimizer_state_dict(model, opt, {"state": opt_state, "param_groups": groups}, options=opts)


def is_main() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def measure_peak_flops(trials: int = 7, reps: int = 3, n: int = 512) -> float:
    """FLOP/s of a dense float32 ``n x n`` matmul on this process: the MFU denominator, a best-case estimate.

    The best of ``trials`` short timings (``reps`` matmuls each, ~10-50 ms on a CPU core) is kept, so a
    moment of contention on a shared machine lowers a few trials but not the estimate; a single long
    timing averaged such moments in and could report an MFU above 100 %.
    """
    import time

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * reps / max(best, 1e-9)
