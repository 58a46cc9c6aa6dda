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
from .loop import Hook

DEFAULT_LR = 3e-3  # projdeploy's small models; transformers encoders bring their own (models/encoder.py)


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float | None = None  # None: the model's own default (DEFAULT_LR, or its ``default_lr``)
    eval_every: int = 20
    patience: int = 4
    beta: float = 10.0  # AFT / KD weight (official AFT default)
    gate_lr: float = 1e-2  # AFT gates s / KD linear map (official AFT default for s)
    noise_dims: int = 0
    distill_alpha: float = 1.0  # response distillation weight (on top of the task loss)
    temperature: float = 2.0
    topk: int = 32  # teacher logits kept per position
    seed: int = 0
    version: int = 2

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
    own = getattr(model, "logits_and_features", None)  # transformers encoders (models/encoder.py)
    if own is not None:
        return own(x)
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


class KeepBest(Hook):
    """Early stopping as a training-loop hook: after every evaluation on the validation rows keep the best
    weights; ask the loop to stop after ``patience`` evaluations without improvement."""

    def __init__(self, model, higher_is_better: bool, patience: int, first_value: float):
        self.model, self.sign, self.patience = model, 1.0 if higher_is_better else -1.0, patience
        self.score, self.state, self.step, self.bad = self.sign * first_value, copy.deepcopy(model.state_dict()), 0, 0
        self.history: list[dict] = []

    def after_step(self, state) -> bool:
        evals = state.result.evals
        if len(evals) == len(self.history):  # no evaluation at this step
            return False
        ev = evals[-1]
        self.history.append({"step": ev["step"], "val": ev["value"]})
        if self.sign * ev["value"] > self.score:
            self.score, self.state, self.step, self.bad = (
                self.sign * ev["value"],
                copy.deepcopy(self.model.state_dict()),
                ev["step"],
                0,
            )
        else:
            self.bad += 1
        return self.bad >= self.patience

    def end(self, state) -> None:
        self.model.load_state_dict(self.state)

    @property
    def value(self) -> float:
        return self.sign * self.score


def _distill(parts, task, data: dict, teachers, cfg: FinetuneConfig, feature_cache, extra_loss):
    """Response distillation: cached top-k teacher logits into ``data`` and the KL loss; else ``extra_loss``."""
    if not any(t.name == "distill" for t in parts):
        return extra_loss
    from ..transfer.distill import cached_topk, distill_loss

    if not teachers:
        raise CheckpointError("response distillation needs at least one --teacher (the big model)")
    if extra_loss is not None:
        raise ConfigError("finetune", "transfer", "distill cannot be combined with another extra loss")
    data.update(cached_topk(teachers[0], task, cfg.topk, feature_cache))
    return distill_loss(cfg.distill_alpha, cfg.temperature)


def _regulariser(parts, model, task, data: dict, teachers, cfg: FinetuneConfig, feature_cache):
    """The feature transfer's regulariser over frozen teacher features (added to ``data["psi"]``), or None."""
    from ..transfer.features import append_noise, teacher_features

    spec = next((t for t in parts if t.regularizer is not None), None)
    if spec is None:
        if teachers and not any(t.needs_teacher for t in parts):
            raise ConfigError("finetune", "teacher", "teachers are only used with --transfer aft|kd|distill")
        return None
    feats = teacher_features(list(teachers), task, task.train.tokens, feature_cache)
    data["psi"] = append_noise(feats, cfg.noise_dims, cfg.seed)
    return spec.regularizer(data["psi"].shape[1], model.config.hidden_size, cfg.beta)


def _start_model(checkpoint, task, seed: int):
    from ..models.checkpoint import load_model
    from ..models.encoder import encoder_config, load_encoder_classifier

    if isinstance(checkpoint, torch.nn.Module):
        model = copy.deepcopy(checkpoint)
    elif encoder_config(checkpoint) is not None:  # a transformers BERT-family classifier, as it is
        return load_encoder_classifier(checkpoint, task, seed)
    else:
        model = load_model(checkpoint)
    return prepare_model(model, task, seed)


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
    from ..tasks import get_task
    from ..tasks.hf_tokenizer import task_for_checkpoint
    from ..tasks.metrics import evaluate
    from ..train.losses import task_data
    from ..transfer import parse_transfers
    from .hooks import Evaluate, ProgressBar
    from .loop import ExtraParams, TrainConfig, train_loop

    parts = parse_transfers(transfer)
    transfer = "+".join(t.name for t in parts)
    task = get_task(task_name) if isinstance(task_name, str) else task_name
    if not isinstance(checkpoint, torch.nn.Module):
        task = task_for_checkpoint(task, checkpoint)  # a pretrained model's tokenizer re-tokenizes
    task = task.with_train_limit(train_rows, seed=data_seed)
    if len(task.train) == 0:
        raise DataError(f"task {task.name!r} has no training rows to fine-tune on")
    model = _start_model(checkpoint, task, cfg.seed)
    data = {**task_data(task), **(extra_data or {})}
    extra_loss = _distill(parts, task, data, teachers, cfg, feature_cache, extra_loss)
    reg = _regulariser(parts, model, task, data, teachers, cfg, feature_cache)
    val, test = split_eval(task, "val"), split_eval(task, "test")
    lr = cfg.lr if cfg.lr is not None else getattr(model, "default_lr", DEFAULT_LR)
    tcfg = TrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=lr,
        seed=cfg.seed,
        eval_every=cfg.eval_every,
        warmup_steps=min(10, max(1, cfg.steps // 10)),
    )
    best = KeepBest(model, task.higher_is_better, cfg.patience, evaluate(model, val)["value"])
    hooks = [Evaluate(lambda: evaluate(model, val)), best, *([ProgressBar()] if progress else [])]
    extra = ExtraParams(tuple(reg.parameters()), cfg.gate_lr) if reg is not None else None
    t0 = time.perf_counter()
    train_loop(model, data, make_loss(task, reg, extra_loss), tcfg, hooks=hooks, extra=extra)
    seconds = time.perf_counter() - t0
    model.eval()
    info = {
        "task": task.name,
        "transfer": transfer,
        "teachers": [str(t) for t in teachers],
        "train_rows": len(task.train),
        "best_step": best.step,
        "val": best.value,
        "test": evaluate(model, test)["value"],
        "metric": task.metric,
        "seconds": seconds,
        "history": best.history,
        "config": {**dataclasses.asdict(cfg), "lr": lr},
        **_gate_summary(reg, parts, cfg),
    }
    if out is not None:
        _write(out, model, task, info, meta)
    return model, info


def _gate_summary(reg, parts, cfg: FinetuneConfig) -> dict:
    """AFT: the mean learned gate (and over noise / real feature dimensions when noise was appended)."""
    if not any(t.name == "aft" for t in parts):
        return {}
    g = reg.gates().numpy()
    out = {"gates_mean": float(g.mean())}
    if cfg.noise_dims:
        out["gates_mean_noise"] = float(g[-cfg.noise_dims :].mean())
        out["gates_mean_real"] = float(g[: -cfg.noise_dims].mean())
    return out


def _write(out, model, task, info: dict, meta: dict | None) -> None:
    from ..fsutil import atomic_dir
    from ..models.checkpoint import write_model_files
    from ..tasks.tokenizers import save_tokenizer

    finetune_meta = {k: v for k, v in info.items() if k != "history"}
    with atomic_dir(out) as tmp:
        write_model_files(
            tmp,
            model,
            {
                "task": task.name,
                "task_kind": task.kind,
                "metric": task.metric,
                "finetune": finetune_meta,
                **(meta or {}),
            },
        )
        save_tokenizer(task.tokenizer, tmp)
