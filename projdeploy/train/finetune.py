"""Fine-tune a small checkpoint on a task, optionally with feature transfer (AFT or feature KD).

    projdeploy finetune --checkpoint runs/digits7-proj --task digits:7 --transfer none --out runs/digits7-ft

LM tasks use the next-token loss; classification tasks put a fresh ``score``
head on the (projected) backbone. Teacher features are computed once before
training (and optionally cached on disk); the big models never run during
training. Early stopping: the task's eval split is halved, the even rows
("val") choose the best checkpoint and stop training after ``patience``
evaluations without improvement; the odd rows ("test") are reported untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    eval_every: int = 20
    patience: int = 4
    beta: float = 10.0  # AFT / KD weight (official AFT default)
    gate_lr: float = 1e-2  # AFT gates s / KD linear map (official AFT default for s)
    noise_dims: int = 0
    distill_alpha: float = 1.0  # response distillation weight (on top of the task loss)
    temperature: float = 2.0
    topk: int = 32  # teacher logits kept per position
    seed: int = 0
    version: int = 1

    def __post_init__(self):
        for f in ("steps", "batch_size", "eval_every"):
            if getattr(self, f) <= 0:
                raise ConfigError("finetune config", f, "must be a positive integer")


def split_eval(task, part: str):
    """The task with its eval split reduced to the even ("val") or odd ("test") rows."""
    idx = np.arange(len(task.eval))
    return dataclasses.replace(task, eval=task.eval.subset(idx[0::2] if part == "val" else idx[1::2]))


def classifier_from_lm(lm: torch.nn.Module, task, seed: int = 0) -> torch.nn.Module:
    """A SequenceClassifier with ``lm``'s backbone weights and a fresh (seeded) ``score`` head."""
    from ..models import build_model

    cfg = lm.config.replace(
        num_labels=task.num_labels,
        id2label=dict(enumerate(task.labels)),
        max_position_embeddings=max(lm.config.max_position_embeddings, task.seq_len),
    )
    clf = build_model(cfg, seed=seed)
    clf.model.load_state_dict(lm.model.state_dict())
    return clf


def prepare_model(model: torch.nn.Module, task, seed: int = 0) -> torch.nn.Module:
    if model.config.vocab_size != task.tokenizer.vocab_size:
        raise CheckpointError(
            f"checkpoint vocab size {model.config.vocab_size} does not match task "
            f"{task.name!r} tokenizer ({task.tokenizer.vocab_size})"
        )
    if task.kind == "cls":
        if not model.config.is_classifier:
            return classifier_from_lm(model, task, seed)
        if model.config.num_labels != task.num_labels:
            raise CheckpointError(
                f"classifier has {model.config.num_labels} labels, task {task.name!r} has {task.num_labels}"
            )
    elif model.config.is_classifier:
        raise CheckpointError(f"task {task.name!r} is language/image modelling but the checkpoint is a classifier")
    return model


def outputs_and_features(model, x: torch.Tensor):
    """(logits, pooled penultimate features) from one backbone pass."""
    h = model.model(x)
    if model.config.is_classifier:
        pooled = model.pool(h, x)
        return model.score(pooled), pooled
    return model.lm_head(h), h.mean(dim=1)


def make_loss(task, reg: torch.nn.Module | None, extra=None):
    import torch.nn.functional as F

    def loss_fn(model, batch):
        toks = batch["tokens"]
        if task.kind == "lm":
            logits, phi = outputs_and_features(model, toks[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))
        else:
            logits, phi = outputs_and_features(model, toks)
            loss = F.cross_entropy(logits, batch["labels"])
        if reg is not None:
            loss = loss + reg(phi, batch["psi"])
        if extra is not None:
            loss = loss + extra(logits, batch)
        return loss

    return loss_fn


class _Stop(Exception):
    pass


def finetune(
    checkpoint: str | Path | torch.nn.Module,
    task_name,
    transfer: str = "none",
    teachers=(),
    out: str | Path | None = None,
    cfg: FinetuneConfig = FinetuneConfig(),
    train_rows: int | None = None,
    data_seed: int = 0,
    feature_cache: str | Path | None = None,
    extra_loss=None,
    extra_data=None,
    progress: bool = True,
    meta: dict | None = None,
):
    """Fine-tune; returns (model, info). Writes an ordinary small checkpoint to ``out`` if given.

    ``train_rows``: keep a deterministic subset of the task's training rows (seeded by ``data_seed``).
    ``extra_loss(logits, batch)`` / ``extra_data`` (row-aligned arrays): hooks for baselines such as
    response distillation.
    """
    from ..models.checkpoint import load_model, write_model_files
    from ..tasks import get_task
    from ..tasks.hf_tokenizer import task_for_checkpoint
    from ..tasks.metrics import evaluate
    from ..tasks.tokenizers import save_tokenizer
    from ..train.losses import task_data
    from ..transfer import parse_transfers
    from ..transfer.features import append_noise, teacher_features
    from .loop import TrainConfig, train_loop

    parts = parse_transfers(transfer)
    transfer = "+".join(t.name for t in parts)
    spec = next((t for t in parts if t.regularizer is not None), None)
    task = get_task(task_name) if isinstance(task_name, str) else task_name
    if not isinstance(checkpoint, torch.nn.Module):
        task = task_for_checkpoint(task, checkpoint)
    task = task.with_train_limit(train_rows, seed=data_seed)
    if len(task.train) == 0:
        raise DataError(f"task {task.name!r} has no training rows to fine-tune on")
    if isinstance(checkpoint, torch.nn.Module):
        model = copy.deepcopy(checkpoint)
    else:
        model = load_model(checkpoint)
    model = prepare_model(model, task, cfg.seed)
    data = task_data(task)
    data.update(extra_data or {})
    reg, extra_params = None, None
    if any(t.name == "distill" for t in parts):
        from ..transfer.distill import cached_topk, distill_loss

        if not teachers:
            raise CheckpointError("response distillation needs at least one --teacher (the big model)")
        if extra_loss is not None:
            raise ConfigError("finetune", "transfer", "distill cannot be combined with another extra loss")
        data.update(cached_topk(teachers[0], task, cfg.topk, feature_cache))
        extra_loss = distill_loss(cfg.distill_alpha, cfg.temperature)
    if spec is not None:
        psi = append_noise(
            teacher_features(list(teachers), task, task.train.tokens, feature_cache), cfg.noise_dims, cfg.seed
        )
        data["psi"] = psi
        reg = spec.regularizer(psi.shape[1], model.config.hidden_size, cfg.beta)
        extra_params = list(reg.parameters())
    elif teachers and not any(t.needs_teacher for t in parts):
        raise ConfigError("finetune", "teacher", "teachers are only used with --transfer aft|kd|distill")
    val, test = split_eval(task, "val"), split_eval(task, "test")
    sign = 1.0 if task.higher_is_better else -1.0
    best = {"score": -float("inf"), "state": copy.deepcopy(model.state_dict()), "step": 0, "bad": 0}
    history = []

    def eval_fn():
        ev = evaluate(model, val)
        step = min((len(history) + 1) * cfg.eval_every, cfg.steps)
        history.append({"step": step, "val": ev["value"]})
        if sign * ev["value"] > best["score"]:
            best.update(score=sign * ev["value"], state=copy.deepcopy(model.state_dict()), step=step, bad=0)
        else:
            best["bad"] += 1
            if best["bad"] >= cfg.patience:
                raise _Stop()
        return ev

    tcfg = TrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        eval_every=cfg.eval_every,
        warmup_steps=min(10, max(1, cfg.steps // 10)),
    )
    before = evaluate(model, val)
    best.update(score=sign * before["value"])
    t0 = time.perf_counter()
    try:
        train_loop(
            model,
            data,
            make_loss(task, reg, extra_loss),
            tcfg,
            eval_fn=eval_fn,
            extra_params=extra_params,
            extra_lr=cfg.gate_lr,
            progress=progress,
        )
    except _Stop:
        pass
    seconds = time.perf_counter() - t0
    model.load_state_dict(best["state"])
    model.eval()
    result = evaluate(model, test)
    info = {
        "task": task.name,
        "transfer": transfer,
        "teachers": [str(t) for t in teachers],
        "train_rows": len(task.train),
        "best_step": best["step"],
        "val": sign * best["score"],
        "test": result["value"],
        "metric": task.metric,
        "seconds": seconds,
        "history": history,
        "config": dataclasses.asdict(cfg),
    }
    if spec is not None and spec.name == "aft":
        g = reg.gates().numpy()
        info["gates_mean"] = float(g.mean())
        if cfg.noise_dims:
            info["gates_mean_noise"] = float(g[-cfg.noise_dims :].mean())
            info["gates_mean_real"] = float(g[: -cfg.noise_dims].mean())
    if out is not None:
        from ..fsutil import atomic_dir

        with atomic_dir(out) as tmp:
            write_model_files(
                tmp,
                model,
                {
                    "task": task.name,
                    "task_kind": task.kind,
                    "metric": task.metric,
                    "finetune": {k: v for k, v in info.items() if k != "history"},
                    **(meta or {}),
                },
            )
            save_tokenizer(task.tokenizer, tmp)
    return model, info
