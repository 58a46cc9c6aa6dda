"""Train a small model on one task and write an HF-compatible checkpoint.

projdeploy train --task digits:0-4 --size tiny --out runs/digits-tiny --steps 300
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..models import build_model, config_for
from ..models.checkpoint import write_model_files
from ..tasks import get_task
from ..tasks.metrics import evaluate
from ..tasks.tokenizers import save_tokenizer
from .hooks import Checkpoints, Evaluate, ProgressBar
from .loop import Throughput, TrainConfig, train_loop
from .losses import task_data, task_loss_fn


def model_config_for_task(task, size: str, **extra):
    tok = task.tokenizer
    kw = dict(
        max_position_embeddings=task.seq_len, bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id
    )
    if task.kind == "cls":
        kw.update(num_labels=task.num_labels, id2label=dict(enumerate(task.labels)))
    kw.update(extra)
    return config_for(size, tok.vocab_size, **kw)


def checkpoint_writer(model, task, meta: dict | None = None):
    """A ``save_fn`` for the training loop: model files + tokenizer + task metadata."""

    def save(directory: Path):
        write_model_files(
            directory, model, {"task": task.name, "task_kind": task.kind, "metric": task.metric, **(meta or {})}
        )
        save_tokenizer(task.tokenizer, directory)

    return save


def train_small(
    task_name: str,
    size: str,
    out: str | Path,
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    max_eval_rows: int | None = 512,
):
    task = get_task(task_name)
    mcfg = model_config_for_task(task, size)
    model = build_model(mcfg, seed=cfg.seed)
    fpt = mcfg.flops_per_token(task.seq_len)
    identity = {"model": mcfg.to_hf_dict(), "task": task.name}
    hooks = [
        Evaluate(lambda: evaluate(model, task, max_rows=max_eval_rows)),
        Checkpoints(out, checkpoint_writer(model, task, {"size": size}), identity=identity, resume=resume),
        *([ProgressBar(fpt)] if progress else []),
    ]
    result = train_loop(
        model, task_data(task), task_loss_fn(task), cfg, hooks=hooks, throughput=Throughput(task.seq_len, fpt)
    )
    return model, task, result


__all__ = ["TrainConfig", "train_small", "model_config_for_task", "checkpoint_writer", "dataclasses"]
