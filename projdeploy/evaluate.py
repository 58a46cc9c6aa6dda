"""Evaluate a checkpoint on a task against the task's count-based baseline.

projdeploy eval --checkpoint runs/digits-tiny --task digits:0-4
"""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError
from .fsutil import atomic_write_json
from .layout import eval_file


def evaluate_checkpoint(checkpoint: str | Path, task_name: str, out: str | Path | None = None) -> dict:
    from .models.checkpoint import load_model
    from .tasks import get_task
    from .tasks.baselines import baseline
    from .tasks.hf_tokenizer import task_for_checkpoint
    from .tasks.metrics import evaluate

    task = task_for_checkpoint(get_task(task_name), checkpoint)  # a pretrained model's tokenizer re-tokenizes
    model = load_model(checkpoint)
    cfg = model.config
    if cfg.vocab_size != task.tokenizer.vocab_size:
        raise CheckpointError(
            f"{checkpoint}: vocab_size {cfg.vocab_size} does not fit task {task.name} "
            f"(tokenizer vocab {task.tokenizer.vocab_size})"
        )
    if (task.kind == "cls") != cfg.is_classifier or (task.kind == "cls" and cfg.num_labels != task.num_labels):
        raise CheckpointError(
            f"{checkpoint}: a {'classifier' if cfg.is_classifier else 'language model'} "
            f"cannot be evaluated on {task.kind} task {task.name}"
        )
    res = evaluate(model, task)
    bname, bval = baseline(task)
    beats = res["value"] > bval if task.higher_is_better else res["value"] < bval
    res.update(
        task=task.name, checkpoint=str(checkpoint), baseline={"name": bname, "value": bval}, beats_baseline=bool(beats)
    )
    path = Path(out) if out else eval_file(checkpoint, task.name, task.source)
    res["path"] = str(path)
    atomic_write_json(path, res)
    return res
