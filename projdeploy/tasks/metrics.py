"""Evaluate a model on a task split: bits/dim, bits/byte (+ perplexity), or accuracy.

python -c "from projdeploy.tasks.metrics import evaluate; ..."
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


def lm_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood in nats, (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none").view(
        targets.shape
    )


def metric_from_outputs(task, outputs: list[np.ndarray], split=None) -> dict:
    """Task metric from model outputs on ``split`` rows, in order (lm: logits per row; cls: logits)."""
    split = split or task.eval
    if task.kind == "cls":
        logits = torch.as_tensor(np.concatenate(outputs)).float()
        labels = torch.as_tensor(split.labels[: len(logits)])
        loss = F.cross_entropy(logits, labels).item()
        acc = (logits.argmax(-1) == labels).float().mean().item()
        return {"metric": "accuracy", "value": acc, "accuracy": acc, "loss": loss, "n": int(len(labels))}
    logits = torch.as_tensor(np.concatenate(outputs)).float()
    targets = torch.as_tensor(split.tokens[: len(logits), 1:])
    nll = lm_nll(logits, targets)
    total_nats = nll.sum().item()
    n_tok = nll.numel()
    if task.metric == "bits_per_byte":
        n_bytes = int(task.tokenizer.token_bytes(targets.numpy()).sum())
        value = total_nats / LN2 / max(n_bytes, 1)
    else:
        n_bytes = n_tok
        value = total_nats / LN2 / n_tok
    return {
        "metric": task.metric,
        "value": value,
        task.metric: value,
        "loss": total_nats / n_tok,
        "perplexity": math.exp(total_nats / n_tok),
        "n": int(len(logits)),
        "tokens": n_tok,
        "bytes": n_bytes,
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, task, split: str = "eval", batch_size: int = 64, max_rows: int | None = None
) -> dict:
    s = task.eval if split == "eval" else task.train
    n = len(s) if max_rows is None else min(len(s), max_rows)
    was_training = model.training
    model.eval()
    outs = []
    for i in range(0, n, batch_size):
        rows = torch.as_tensor(s.tokens[i : min(i + batch_size, n)])
        x = task.model_inputs(rows)
        outs.append(model(x).float().numpy())
    model.train(was_training)
    return metric_from_outputs(task, outs, s)
