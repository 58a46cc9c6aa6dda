"""Loss functions for the training loop: ``loss_fn(model, batch) -> scalar``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lm_loss(model, batch) -> torch.Tensor:
    toks = batch["tokens"]
    logits = model(toks[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))


def cls_loss(model, batch) -> torch.Tensor:
    return F.cross_entropy(model(batch["tokens"]), batch["labels"])


def task_loss_fn(task):
    return lm_loss if task.kind == "lm" else cls_loss


def task_data(task, split: str = "train") -> dict:
    s = task.train if split == "train" else task.eval
    d = {"tokens": s.tokens}
    if task.kind == "cls":
        d["labels"] = s.labels
    return d
