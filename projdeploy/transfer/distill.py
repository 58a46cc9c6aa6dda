"""Response distillation from the big model: temperature-scaled KL on cached top-k teacher logits.

    projdeploy finetune --checkpoint runs/email-prune --task pycode:email --transfer distill --teacher smollm2-135m --out runs/ft

The teacher (a projdeploy dense checkpoint, or a pretrained model: HF
directory, GGUF file, built-in name) runs once over the training rows; its
``k`` largest logits per position are kept (indices int32, values float16) and
cached as ``.npz`` (no pickle) when a cache directory is given. During
training the loss adds ``alpha * T^2 * CE(p_T, q_T)`` where ``p_T`` is the
teacher's softmax at temperature ``T`` over its top-k (renormalised) and
``q_T`` the student's full softmax at ``T`` read at those indices: the KL to
the truncated teacher distribution up to its constant entropy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError


def load_logit_teacher(spec) -> torch.nn.Module:
    """A frozen next-token model: a pretrained source or a dense projdeploy checkpoint."""
    from ..foundation import is_foundation_source

    if is_foundation_source(spec):
        from ..foundation import load_big

        return load_big(str(spec)).module
    from ..project.api import load_dense_big

    if not Path(spec).is_dir():
        raise CheckpointError(f"teacher {str(spec)!r} does not exist")
    return load_dense_big(spec).eval().requires_grad_(False)


@torch.no_grad()
def teacher_topk(teacher: torch.nn.Module, inputs: np.ndarray, k: int, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 (N, T, k), logits float16 (N, T, k)) of the teacher's k largest next-token logits."""
    idx, val = [], []
    for s in range(0, len(inputs), batch):
        logits = teacher(torch.as_tensor(inputs[s : s + batch])).float()
        v, i = logits.topk(k, dim=-1)
        idx.append(i.to(torch.int32).numpy())
        val.append(v.to(torch.float16).numpy())
    return np.concatenate(idx), np.concatenate(val)


def cached_topk(teacher_spec, task, k: int, cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Row-aligned ``distill_idx`` / ``distill_val`` arrays for the task's training rows (computed once)."""
    if task.kind != "lm":
        raise ConfigError(
            "finetune", "transfer", f"distill needs a language-modelling task; {task.name!r} is {task.kind}"
        )
    teacher = load_logit_teacher(teacher_spec)
    if teacher.config.vocab_size != task.tokenizer.vocab_size:
        raise CheckpointError(
            f"teacher {teacher_spec}: vocab size {teacher.config.vocab_size} does not match task "
            f"{task.name!r} tokenizer ({task.tokenizer.vocab_size})"
        )
    inputs = task.train.tokens[:, :-1]
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{teacher_spec}|{k}".encode() + np.ascontiguousarray(inputs).tobytes()).hexdigest()[:24]
        path = Path(cache_dir, f"topk-{key}.npz")
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return {"distill_idx": z["idx"], "distill_val": z["val"]}
    idx, val = teacher_topk(teacher, inputs, k)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, idx=idx, val=val)
        tmp.replace(path)
    return {"distill_idx": idx, "distill_val": val}


def distill_loss(alpha: float, temperature: float):
    """``extra_loss(logits, batch)`` for the fine-tuning loop."""

    def extra(logits: torch.Tensor, batch) -> torch.Tensor:
        t = temperature
        p = F.softmax(batch["distill_val"].float() / t, dim=-1)
        logq = F.log_softmax(logits.float() / t, dim=-1).gather(-1, batch["distill_idx"].long())
        return alpha * t * t * -(p * logq).sum(-1).mean()

    return extra
