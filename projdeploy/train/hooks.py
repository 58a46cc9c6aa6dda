"""The training loop's hooks: periodic evaluation, checkpoints with exact resume, the progress bar.

    python -c "from projdeploy.train.hooks import Evaluate, Checkpoints, ProgressBar"

Each is a :class:`projdeploy.train.loop.Hook`; ``train_loop(..., hooks=[...])`` runs them in order after
every step. Early stopping lives with its user (``finetune``): a hook whose ``after_step`` returns True.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..fsutil import atomic_dir
from . import state as st
from .loop import Hook, LoopState, _fingerprint


class Evaluate(Hook):
    """Call ``fn() -> dict`` every ``cfg.eval_every`` steps and after the last; record it in ``result.evals``."""

    def __init__(self, fn: Callable[[], dict]):
        self.fn = fn

    def after_step(self, state: LoopState) -> None:
        every, s = state.cfg.eval_every, state.step
        if every and (s % every == 0 or s == state.cfg.steps):
            ev = self.fn()
            state.result.evals.append({"step": s, **ev})
            state.model.train()


class Checkpoints(Hook):
    """Checkpoints in ``out_dir`` every ``cfg.ckpt_every`` steps and at the end, written atomically.

    ``save_fn(tmpdir)`` (or ``save_fn(tmpdir, full_model_state)`` under FSDP, on rank 0) writes the model
    files; the hook adds the optimizer, any extra parameters and the trainer state. ``resume``: continue
    exactly from ``out_dir`` (its ``identity`` + training config must match). ``init_optimizer_from``: a
    directory with ``optimizer.safetensors`` (e.g. a grown model's carried state) to start from otherwise.
    FSDP: every checkpoint gathers the full model and optimizer state on all ranks; the files are the same
    as unsharded training's, and resume shards the full state back.
    """

    def __init__(
        self,
        out_dir: str | Path | None,
        save_fn: Callable | None,
        *,
        identity: dict | None = None,
        resume: bool = False,
        init_optimizer_from: str | Path | None = None,
    ):
        self.out_dir = Path(out_dir) if out_dir else None
        self.save_fn, self.identity, self.resume = save_fn, identity or {}, resume
        self.init_from = Path(init_optimizer_from) if init_optimizer_from else None

    def start(self, state: LoopState) -> None:
        from .distributed import is_sharded, load_full_states

        self.ident = {"train": dataclasses.asdict(state.cfg), **self.identity}
        self.fp = _fingerprint(self.ident)
        self.sharded = is_sharded(state.model)
        if self.init_from is not None and not self.resume:
            if self.sharded:
                opt_state = st.read_optimizer_state(state.names, self.init_from)
                load_full_states(state.model, state.opt, None, opt_state, state.names)
            else:
                st.load_optimizer(state.opt, state.names, self.init_from)
        if self.resume:
            self._restore(state)

    def _restore(self, state: LoopState) -> None:
        from safetensors.torch import load_file

        from ..train.loop import _diff
        from .distributed import load_full_states

        out = self.out_dir
        prev = st.read_state(out) if out else None
        if prev is None:
            raise CheckpointError(f"cannot resume: {out} holds no trainer state")
        if prev["fingerprint"] != self.fp:
            diff = _diff(prev.get("identity", {}), json.loads(json.dumps(self.ident, default=str)))
            raise CheckpointError(f"cannot resume {out}: its configuration differs ({diff}); nothing was overwritten")
        weights = load_file(str(out / "model.safetensors"))
        if self.sharded:  # every rank reads the full files and keeps its shard
            load_full_states(state.model, state.opt, weights, st.read_optimizer_state(state.names, out), state.names)
        else:
            state.model.load_state_dict(weights, strict=False)
        if state.extra:
            ex = load_file(str(out / "extra.safetensors"))
            with torch.no_grad():
                for i, p in enumerate(state.extra):
                    p.copy_(ex[f"extra.{i}"])
        if not self.sharded:
            st.load_optimizer(state.opt, state.names, out)
        r = state.result
        state.step = prev["step"]
        r.losses, r.evals = prev["losses"], prev["evals"]
        r.tokens, r.flops = prev.get("tokens", 0), prev.get("flops", 0.0)

    def after_step(self, state: LoopState) -> None:
        every = state.cfg.ckpt_every
        if every and state.step % every == 0 and state.step < state.cfg.steps:
            self.save(state)

    def end(self, state: LoopState) -> None:
        self.save(state)

    def save(self, state: LoopState) -> None:
        from .distributed import full_states

        if self.out_dir is None or self.save_fn is None:
            return
        full = full_states(state.model, state.opt) if self.sharded else None  # collective: all ranks gather
        if state.rank != 0:
            return
        with atomic_dir(self.out_dir) as tmp:
            if full is not None:
                self.save_fn(tmp, full[0])
                st.save_optimizer_state(full[1], state.names, tmp)
            else:
                self.save_fn(tmp)
                st.save_optimizer(state.opt, state.names, tmp)
            if state.extra:
                from safetensors.torch import save_file

                tensors = {f"extra.{i}": p.detach().contiguous() for i, p in enumerate(state.extra)}
                save_file(tensors, str(tmp / "extra.safetensors"))
            r = state.result
            trainer = {
                "step": state.step,
                "fingerprint": self.fp,
                "identity": json.loads(json.dumps(self.ident, default=str)),
            }
            st.write_state(tmp, {**trainer, "losses": r.losses, "evals": r.evals, "tokens": r.tokens, "flops": r.flops})


class ProgressBar(Hook):
    """A tqdm bar on stderr (rank 0) with loss, tokens/s, the last eval and, given ``peak_flops`` (FLOP/s of
    the whole job), model FLOP utilisation."""

    def __init__(self, flops_per_token: float = 0.0, peak_flops: float = 0.0):
        self.flops_per_token, self.peak_flops, self.bar = flops_per_token, peak_flops, None

    def start(self, state: LoopState) -> None:
        if state.rank != 0:
            return
        from tqdm import tqdm

        self.bar = tqdm(
            total=state.cfg.steps,
            initial=state.step,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            desc="train",
            mininterval=0.5,
        )
        self.t_window = time.perf_counter()

    def after_step(self, state: LoopState) -> None:
        if self.bar is None:
            return
        now, r = time.perf_counter(), state.result
        if now - self.t_window > 0.5 or state.step == state.cfg.steps:
            rate = state.window_tokens / (now - self.t_window)
            post = {"loss": f"{r.losses[-1]:.3f}", "tok/s": f"{rate:.0f}"}
            if self.peak_flops:
                post["mfu"] = f"{100 * 3 * self.flops_per_token * rate / self.peak_flops:.1f}%"
            if self.flops_per_token:
                post["flops"] = f"{r.flops:.2e}"
            if r.evals:
                post["eval"] = f"{r.evals[-1].get('value', float('nan')):.3f}"
            self.bar.set_postfix(post)
            state.window_tokens, self.t_window = 0, now
        self.bar.update(1)

    def end(self, state: LoopState) -> None:
        if self.bar is not None:
            self.bar.close()
