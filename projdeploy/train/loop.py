"""One training loop for every model kind (small, projected network, big, grown).

    projdeploy train --task digits:0-4 --size tiny --out runs/tiny

Deterministic on CPU: the batch at step ``s`` is a pure function of
``(seed, s)``, so a run resumed from a checkpoint reproduces the
uninterrupted run exactly. AdamW + warmup/cosine schedule. The loop itself
only steps; periodic eval, checkpoints (written atomically, exact resume), the
progress bar and early stopping are hooks (``hooks.py``).
Under ``torchrun`` the global batch is split over ranks (DDP or FSDP2; gloo on CPU).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    ckpt_every: int = 0  # 0 = only at the end
    seed: int = 0

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        t = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of the global batch at ``step``: epochs of a seeded permutation, remainder dropped."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    if n < batch_size:
        return perm
    return perm[k * batch_size : (k + 1) * batch_size]


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    flops: float = 0.0


@dataclass(frozen=True)
class ExtraParams:
    """Trainable parameters outside the model (a regulariser's gates), with their own learning rate."""

    params: tuple[torch.nn.Parameter, ...]
    lr: float | None = None  # None: the model's


@dataclass(frozen=True)
class Throughput:
    """What one row is worth, for the tokens and FLOPs the result counts."""

    tokens_per_row: int = 1
    flops_per_token: float = 0.0  # forward FLOPs per token; training counts 3x


@dataclass
class LoopState:
    """What hooks see: the model, its optimizer, the step about to run (or just run), the running result."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    names: list[str]  # optimizer parameter names, in group order (checkpoint files key by them)
    cfg: TrainConfig
    extra: tuple[torch.nn.Parameter, ...]
    rank: int
    world: int
    step: int = 0
    result: TrainResult = field(default_factory=TrainResult)
    window_tokens: int = 0  # tokens since the progress bar last refreshed


class Hook:
    """Called by :func:`train_loop`: ``start`` before the first step, ``after_step`` after each (return True
    to stop training), ``end`` after the last. Subclasses override what they need."""

    def start(self, state: LoopState) -> None:
        pass

    def after_step(self, state: LoopState) -> bool | None:
        return None

    def end(self, state: LoopState) -> None:
        pass


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _optimizer(model, cfg: TrainConfig, extra: ExtraParams | None):
    """AdamW with decay on matrices only; ``extra`` parameters in their own group. -> (optimizer, names)."""
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    names = [nm for nm, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    names += [nm for nm, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if extra and extra.params:
        scale = (extra.lr or cfg.lr) / cfg.lr
        groups.append({"params": list(extra.params), "weight_decay": 0.0, "lr_scale": scale})
        names += [f"__extra.{i}" for i in range(len(extra.params))]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)), names


def _step(state: LoopState, data: dict, n: int, loss_fn, fwd, device, throughput: Throughput) -> None:
    """One optimizer step on the global batch of ``state.step`` (this rank's share of it)."""
    cfg, opt, world = state.cfg, state.opt, state.world
    idx = batch_indices(n, cfg.batch_size, cfg.seed, state.step)[state.rank :: world]
    batch = {k: torch.as_tensor(v[idx]).to(device) for k, v in data.items()}
    lr = cfg.lr_at(state.step)
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
    loss = loss_fn(fwd, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
    opt.step()
    lval = loss.detach()
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(lval)
        lval = lval / world
    r = state.result
    r.losses.append(float(lval))
    ntok = len(idx) * world * throughput.tokens_per_row
    r.tokens += ntok
    r.flops += 3.0 * throughput.flops_per_token * ntok  # forward + backward = 3x forward
    state.window_tokens += ntok


def train_loop(
    model: torch.nn.Module,
    data: dict[str, np.ndarray],
    loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
    cfg: TrainConfig,
    *,
    hooks: Sequence[Hook] = (),
    extra: ExtraParams | None = None,
    throughput: Throughput = Throughput(),
    ddp_model: torch.nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps on ``data`` (dict of row-aligned arrays).

    Everything around the step is a hook, run in the order given: :class:`Evaluate`,
    :class:`Checkpoints` (resume, periodic and final checkpoints), :class:`ProgressBar`, or the caller's
    own (early stopping in ``finetune``). ``ddp_model``: the DistributedDataParallel/FSDP wrapper to call
    in ``loss_fn`` (else ``model``).
    """
    from .distributed import is_sharded

    rank, world = _dist()
    if is_sharded(model) and extra and extra.params:
        raise ConfigError("train", "extra_params", "extra parameters outside the model are not supported under FSDP")
    torch.manual_seed(cfg.seed)
    opt, names = _optimizer(model, cfg, extra)
    state = LoopState(model, opt, names, cfg, tuple(extra.params) if extra else (), rank, world)
    for h in hooks:
        h.start(state)
    fwd = ddp_model or model
    device = next(model.parameters()).device  # batches follow the model (CPU here; cuda:LOCAL_RANK under NCCL)
    n = len(next(iter(data.values())))
    model.train()
    t0 = time.perf_counter()
    while state.step < cfg.steps:
        _step(state, data, n, loss_fn, fwd, device, throughput)
        state.step += 1
        stop = [h.after_step(state) for h in hooks]  # every hook sees every step, even when one stops
        if any(stop):
            break
    state.result.seconds = time.perf_counter() - t0
    for h in hooks:
        h.end(state)
    return state.result


def _diff(a: dict, b: dict, prefix: str = "") -> str:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            d = _diff(va, vb, f"{prefix}{k}.")
            if d:
                out.append(d)
        elif va != vb:
            out.append(f"{prefix}{k}: checkpoint {va!r} vs now {vb!r}")
    return "; ".join(out)
