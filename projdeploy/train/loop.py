"""One training loop for every model kind (small, projected network, big, grown).

Deterministic on CPU: the batch at step ``s`` is a pure function of
``(seed, s)``, so a run resumed from a checkpoint reproduces the
uninterrupted run exactly. AdamW + warmup/cosine schedule, periodic eval,
a progress bar with tokens/s, checkpoints written atomically.
Under ``torchrun`` the global batch is split over ranks (DDP or FSDP2; gloo on CPU).

    projdeploy train --task digits:0-4 --size tiny --out runs/tiny
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..fsutil import atomic_dir
from . import state as st


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


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train_loop(
    model: torch.nn.Module,
    data: dict[str, np.ndarray],
    loss_fn: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
    cfg: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    save_fn: Callable[[Path], None] | None = None,
    eval_fn: Callable[[], dict] | None = None,
    resume: bool = False,
    identity: dict | None = None,
    extra_params: list[torch.nn.Parameter] | None = None,
    extra_lr: float | None = None,
    tokens_per_row: int = 1,
    flops_per_token: float = 0.0,
    progress: bool = True,
    ddp_model: torch.nn.Module | None = None,
    peak_flops: float = 0.0,
    init_optimizer_from: str | Path | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps on ``data`` (dict of row-aligned arrays).

    ``save_fn(tmpdir)`` writes the model files into a fresh directory; the loop adds
    the optimizer and trainer state and renames it to ``out_dir`` atomically.
    ``identity`` (model config, task, ...) must match on ``resume``.
    ``ddp_model``: the DistributedDataParallel wrapper to call in ``loss_fn`` (else ``model``).
    ``peak_flops``: FLOP/s of the whole job; when set, the progress bar shows model FLOP utilisation.
    ``init_optimizer_from``: a directory with ``optimizer.safetensors`` (e.g. a grown model's carried
    state) to start from when not resuming.
    FSDP: when ``model`` was sharded with ``distributed.shard_model``, every checkpoint gathers the full
    model and optimizer state on all ranks and rank 0 calls ``save_fn(tmpdir, full_model_state)``; the
    files written are the same as unsharded training's. Resume shards the full state back.
    """
    from .distributed import full_states, is_sharded, load_full_states

    rank, world = _dist()
    sharded = is_sharded(model)
    if sharded and extra_params:
        raise ConfigError("train", "extra_params", "extra parameters outside the model are not supported under FSDP")
    out_dir = Path(out_dir) if out_dir else None
    torch.manual_seed(cfg.seed)
    ident = {"train": dataclasses.asdict(cfg), **(identity or {})}
    fp = _fingerprint(ident)
    n = len(next(iter(data.values())))

    decay, no_decay, names = [], [], []
    for _name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    names = [nm for nm, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    names += [nm for nm, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if extra_params:
        groups.append({"params": list(extra_params), "weight_decay": 0.0, "lr_scale": (extra_lr or cfg.lr) / cfg.lr})
        names += [f"__extra.{i}" for i in range(len(extra_params))]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))

    result, start = TrainResult(), 0
    if init_optimizer_from is not None and not resume:
        if sharded:
            load_full_states(model, opt, None, st.read_optimizer_state(names, Path(init_optimizer_from)), names)
        else:
            st.load_optimizer(opt, names, Path(init_optimizer_from))
    if resume:
        prev = st.read_state(out_dir) if out_dir else None
        if prev is None:
            raise CheckpointError(f"cannot resume: {out_dir} holds no trainer state")
        if prev["fingerprint"] != fp:
            diff = _diff(prev.get("identity", {}), json.loads(json.dumps(ident, default=str)))
            raise CheckpointError(
                f"cannot resume {out_dir}: its configuration differs ({diff}); nothing was overwritten"
            )
        from safetensors.torch import load_file

        if sharded:  # every rank reads the full files and keeps its shard
            load_full_states(
                model,
                opt,
                load_file(str(out_dir / "model.safetensors")),
                st.read_optimizer_state(names, out_dir),
                names,
            )
        else:
            model.load_state_dict(load_file(str(out_dir / "model.safetensors")), strict=False)
        if extra_params:
            ex = load_file(str(out_dir / "extra.safetensors"))
            with torch.no_grad():
                for i, p in enumerate(extra_params):
                    p.copy_(ex[f"extra.{i}"])
        if not sharded:
            st.load_optimizer(opt, names, out_dir)
        start = prev["step"]
        result.losses, result.evals = prev["losses"], prev["evals"]
        result.tokens, result.flops = prev.get("tokens", 0), prev.get("flops", 0.0)

    def checkpoint(step):
        if out_dir is None or save_fn is None:
            return
        full = full_states(model, opt) if sharded else None  # collective: all ranks gather
        if rank != 0:
            return
        with atomic_dir(out_dir) as tmp:
            if full is not None:
                save_fn(tmp, full[0])
                st.save_optimizer_state(full[1], names, tmp)
            else:
                save_fn(tmp)
                st.save_optimizer(opt, names, tmp)
            if extra_params:
                from safetensors.torch import save_file

                save_file(
                    {f"extra.{i}": p.detach().contiguous() for i, p in enumerate(extra_params)},
                    str(tmp / "extra.safetensors"),
                )
            st.write_state(
                tmp,
                {
                    "step": step,
                    "fingerprint": fp,
                    "identity": json.loads(json.dumps(ident, default=str)),
                    "losses": result.losses,
                    "evals": result.evals,
                    "tokens": result.tokens,
                    "flops": result.flops,
                },
            )

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=start,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            desc="train",
            mininterval=0.5,
        )
    fwd = ddp_model or model
    device = next(model.parameters()).device  # batches follow the model (CPU here; cuda:LOCAL_RANK under NCCL)
    model.train()
    t0 = time.perf_counter()
    tok_window, t_window = 0, t0
    for step in range(start, cfg.steps):
        idx = batch_indices(n, cfg.batch_size, cfg.seed, step)
        idx = idx[rank::world]
        batch = {k: torch.as_tensor(v[idx]).to(device) for k, v in data.items()}
        lr = cfg.lr_at(step)
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
        result.losses.append(float(lval))
        ntok = len(idx) * world * tokens_per_row
        result.tokens += ntok
        result.flops += 3.0 * flops_per_token * ntok  # forward + backward = 3x forward
        tok_window += ntok
        if eval_fn and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            ev = eval_fn()
            result.evals.append({"step": step + 1, **ev})
            model.train()
        if bar is not None:
            now = time.perf_counter()
            if now - t_window > 0.5 or step + 1 == cfg.steps:
                post = {"loss": f"{result.losses[-1]:.3f}", "tok/s": f"{tok_window / (now - t_window):.0f}"}
                if peak_flops:
                    post["mfu"] = f"{100 * 3 * flops_per_token * tok_window / (now - t_window) / peak_flops:.1f}%"
                if flops_per_token:
                    post["flops"] = f"{result.flops:.2e}"
                if result.evals:
                    post["eval"] = f"{result.evals[-1].get('value', float('nan')):.3f}"
                bar.set_postfix(post)
                tok_window, t_window = 0, now
            bar.update(1)
        if cfg.ckpt_every and (step + 1) % cfg.ckpt_every == 0 and step + 1 < cfg.steps:
            checkpoint(step + 1)
    if bar is not None:
        bar.close()
    result.seconds = time.perf_counter() - t0
    checkpoint(cfg.steps)
    return result


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
