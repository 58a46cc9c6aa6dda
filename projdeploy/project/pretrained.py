"""Projection methods that train on top of a pretrained dense big model: ``projector`` and upcycled ``pn``.

    projdeploy project --big smollm2-135m --task pycode:email --method projector --train-steps 20 --out runs/p
    projdeploy project --big smollm2-135m --task pycode:email --method pn --train-steps 20 --out runs/pn

Both start from the ``prune`` selection of the task (``prune.py``), so with no training they return exactly
the pruned model (tested), and both continue training on *generic* data: the standard-library corpus
(``pycode``) re-tokenized with the big model's tokenizer, with the task's own domain (``pycode:<pkg>``) and
any further ``exclude`` domains held out, and never an eval file.

- ``projector`` (methods.md section 2): the operator's maps start as the selection; M1 (a copy of the
  pretrained model) and the operator then train jointly on ``L_orig(M1) + lam * mean_t L_task(P_s(M1, t))``
  with one task per generic package; the target task, unseen, fits only its embedding, then one
  evaluation of the operator gives the small model.
- ``pn`` upcycled (methods.md section 1): a Projected Network whose shared weights are the pruned model's
  and whose experts all start as the pruned MLP (basis matrix 0 = that MLP, the other ``h - 1`` zero, every
  coefficient vector ``c[l, i]`` with ``c_0 = 1``; ``h < k``); continued pretraining routes each generic row
  through the expert of its k-means cluster; then the usual expert projection (``pn.py``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class ContinuedTraining:
    """Budget of the training on generic data (shared by ``projector`` and upcycled ``pn``)."""

    steps: int = 20
    batch_size: int = 4
    lr: float = 1e-4
    generic_rows: int = 256  # windows of the task's length sampled from the generic corpus
    exclude: tuple[str, ...] = ()  # pycode packages held out besides the task's own
    version: int = 1

    def __post_init__(self):
        for f in ("batch_size", "generic_rows"):
            if getattr(self, f) <= 0:
                raise ConfigError("continued training", f, "must be a positive integer")
        if self.steps < 0 or self.lr <= 0:
            raise ConfigError("continued training", "steps/lr", "steps must be >= 0 and lr > 0")

    def train_config(self, seed: int):
        from ..train.loop import TrainConfig

        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=max(1, self.steps // 10),
            eval_every=0,
            weight_decay=0.0,
            seed=seed,
        )


@dataclass(frozen=True)
class GenericData:
    """Generic training windows in the big model's tokenizer, each labelled with its package."""

    task: object  # a Task holding the windows (train split), for clustering
    package: np.ndarray  # (N,) index into ``packages``
    packages: tuple[str, ...]
    held_out: tuple[str, ...]


def held_out_packages(task, exclude: tuple[str, ...]) -> tuple[str, ...]:
    own = (task.name.split(":", 1)[1],) if task.name.startswith("pycode:") else ()
    return tuple(sorted(set(own) | set(exclude)))


def generic_data(task, cfg: ContinuedTraining, seed: int = 0) -> GenericData:
    """``cfg.generic_rows`` windows of the generic corpus (held-out packages excluded), tokenized like ``task``."""
    from ..tasks.base import Split, pack_documents
    from ..tasks.pycode import generic_train_files

    held = held_out_packages(task, cfg.exclude)
    files = generic_train_files(held, max_bytes=cfg.generic_rows * task.seq_len * 8)
    if not files:
        raise DataError(f"no generic training files left after holding out {list(held)}")
    tok = task.tokenizer
    toks, doc = pack_documents([tok.encode(text) for _, text in files], task.seq_len, tok.eos_id, None)
    pick = np.sort(np.random.default_rng([seed, 23]).permutation(len(toks))[: cfg.generic_rows])
    names = tuple(sorted({pkg or "(top-level)" for pkg, _ in files}))
    pkg = np.array([names.index(files[d][0] or "(top-level)") for d in doc[pick]], np.int64)
    split = Split(toks[pick], None, doc[pick], [text for _, text in files])
    gtask = dataclasses.replace(task, name="pycode-generic", train=split, eval=split, labels=[])
    return GenericData(gtask, pkg, names, held)


def _source(big_dir, task, method: str, size, params, calibration: int, seed: int):
    """(trainable copy of the pretrained big model, task in its tokenizer, small config, prune selection)."""
    from .api import dense_small
    from .prune import pruning_selection

    big, task, cfg = dense_small(big_dir, task, method, size, params)
    sel = pruning_selection(big, task, cfg, calibration, seed)
    return copy.deepcopy(big).train().requires_grad_(True), task, cfg, sel


def project_projector_pretrained(
    big_dir, task, *, seed=0, size=None, params=None, calibration=32, fit_steps=100, train=ContinuedTraining()
):
    """(small CausalLM, info): prune-initialised operator, joint training, the task's embedding fitted alone."""
    from .projector import Operator, ProjectorConfig, ProjectorModel, fit_task_embedding, lm_rows, projector_loss
    from .prune import dropped_layers

    m1, task, cfg, sel = _source(big_dir, task, "projector", size, params, calibration, seed)
    info = {"calibration_rows": min(calibration, len(task.train)), "dropped_layers": dropped_layers(m1, sel)}
    pcfg = ProjectorConfig(small_size="pruned")
    if train.steps == 0:  # the maps are the selection and V = 0: every task embedding gives the pruned model
        op = Operator(m1.config, cfg, pcfg, 1, init=sel)
        return op.materialise(m1, op.task_emb[0].detach()), {**info, "mode": "prune-init", "train_steps": 0}
    from ..train.loop import train_loop

    data = generic_data(task, train, seed)
    torch.manual_seed(seed + 1)
    op = Operator(m1.config, cfg, pcfg, len(data.packages), init=sel)
    model = ProjectorModel.from_parts(m1, op, list(data.packages))
    arrays = {"tokens": data.task.train.tokens, "task": data.package}
    res = train_loop(model, arrays, projector_loss(pcfg.lam, pcfg.tasks_per_step), train.train_config(seed))
    model.eval()
    with torch.enable_grad():
        e = fit_task_embedding(model, lm_rows(task), steps=fit_steps, seed=seed)
    small = op.materialise(model.big, e)
    return small, {
        **info,
        "mode": "fitted-embedding",
        "train_steps": train.steps,
        "fit_steps": fit_steps,
        "train_loss": [res.losses[0], res.losses[-1]],
        "held_out": list(data.held_out),
        "generic_rows": len(data.package),
    }
