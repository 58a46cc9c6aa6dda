"""One-shot projection of a big server-side model into an ordinary small task checkpoint.

    projdeploy project --big runs/pn --task digits:7 --method pn --out runs/digits7-pn
    python -c "from projdeploy.project.api import project; project('runs/projector', 'digits:7', 'projector', 'runs/p')"

Methods are the table in ``methods.py``: ``pn`` and ``hard-moe`` (a Projected
Network's / hard mixture's expert, ``pn.py``), ``projector`` (task-conditioned
operator, ``projector.py``), ``prune`` (Minitron-style structured pruning from activations,
``prune.py``) and ``truncate`` (naive slicing, the baseline). ``prune`` and ``truncate`` also take
pretrained models (``projdeploy.foundation``: an HF directory, a GGUF file or a built-in name); the
task is then re-tokenized with the big model's own tokenizer. The output loads in ``transformers``; for a
classification task it is a SequenceClassifier with a fresh (seeded) head on
the projected backbone, to be fine-tuned.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import CheckpointError, ConfigError, DataError

PN_KINDS = ("pn", "hard-moe")


def load_dense_big(big_dir: str | Path):
    """The dense big model for truncation: a dense checkpoint, or a projector checkpoint's M1."""
    from ..models.checkpoint import load_model, read_meta

    kind = read_meta(big_dir).get("kind", "small")
    if kind == "projector":
        from .projector import load_projector

        return load_projector(big_dir).big
    if kind in PN_KINDS:
        raise CheckpointError(
            f"{big_dir}: a {kind!r} checkpoint has no dense weights to truncate; "
            "use --method pn, or truncate a dense checkpoint (pretrain --model dense)"
        )
    model = load_model(big_dir)
    if model.config.is_classifier:
        raise CheckpointError(f"{big_dir}: a classifier checkpoint cannot be projected; expected a causal LM")
    return model


def task_for_big(big_dir, task):
    """The task as the big model reads it: re-tokenized with a pretrained model's own tokenizer."""
    from ..foundation import is_foundation_source

    if not is_foundation_source(big_dir):
        return task
    from ..foundation.load import load_big_tokenizer
    from ..tasks.hf_tokenizer import fit_task

    return fit_task(task, load_big_tokenizer(big_dir))


def dense_source(big_dir, task, method: str):
    """(dense big module, task in its tokenizer, default --params) for truncate / prune."""
    from ..foundation import is_foundation_source

    if is_foundation_source(big_dir):
        from ..foundation import load_big
        from ..tasks.hf_tokenizer import fit_task

        big = load_big(str(big_dir))
        big.require_projectable(method)
        return big.module, fit_task(task, big.tokenizer), "25%"
    return load_dense_big(big_dir), task, None


def dense_small(big_dir, task, method: str, size=None, params=None):
    """(dense big module, task in its tokenizer, small config from ``--size`` / ``--params``)."""
    from .sizing import small_config

    big, task, default_params = dense_source(big_dir, task, method)
    if size is None and params is None:
        params = default_params
    return big, task, small_config(big.config, size, params, default=small_size_of(big_dir))


def dense_projection(big_dir, task, method, *, seed=0, size=None, params=None, calibration=32):
    """truncate / prune of a dense big model to ``--size`` / ``--params`` -> (small, info)."""
    big, task, cfg = dense_small(big_dir, task, method, size, params)
    if method == "prune":
        from .prune import prune

        small, info = prune(big, task, cfg, calibration, seed)
    else:
        from .truncate import truncate_model

        small, info = truncate_model(big, cfg), {}
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    return small, {
        "size": size or params or small_size_of(big_dir),
        "config": {k: getattr(cfg, k) for k in keys},
        **info,
    }


def pretrained_projection(big, task, method: str, *, seed=0, size=None, params=None, calibration=32):
    """prune / truncate of a pretrained model: the Llama family into projdeploy's module, the BERT family
    (classification) into a smaller transformers BERT classifier (``bert.py``)."""
    from ..foundation import resolve_source

    if resolve_source(str(big)).family == "bert":
        from .bert import project_bert

        return project_bert(big, task, method, seed=seed, size=size, params=params, calibration=calibration)
    return dense_projection(big, task, method, seed=seed, size=size, params=params, calibration=calibration)


def small_size_of(big_dir: str | Path, default: str = "tiny") -> str:
    from ..models.checkpoint import read_meta

    pre = read_meta(big_dir).get("preset")
    if isinstance(pre, dict) and pre.get("small_size"):
        return pre["small_size"]
    if isinstance(pre, str):
        from ..train.presets import PRESETS

        if pre in PRESETS:
            return PRESETS[pre].small_size
    return default


def project_model(big_dir: str | Path, task, method: str, *, seed: int = 0, **options):
    """(small model, info) without writing anything. ``options``: the method's own (``methods.py``)."""
    from ..foundation import is_foundation_source
    from .methods import get_method

    spec = get_method(method)
    pretrained = is_foundation_source(big_dir)
    allowed = spec.options_for(pretrained)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"projection method {method!r}", unknown[0], f"not an option; allowed: {list(allowed)}")
    if not pretrained:
        big_dir = Path(big_dir)
        if not big_dir.is_dir():
            raise CheckpointError(f"big checkpoint directory {str(big_dir)!r} does not exist")
    if len(task.train) == 0:
        raise DataError(f"task {task.name!r} has no training data to project for")
    t0 = time.perf_counter()
    small, info = spec.runner(big_dir, pretrained)(big_dir, task, seed=seed, **options)
    if small.config.vocab_size != task.tokenizer.vocab_size:
        raise CheckpointError(
            f"{big_dir}: vocab size {small.config.vocab_size} does not match task "
            f"{task.name!r} tokenizer ({task.tokenizer.vocab_size}); pretrain on matching data"
        )
    from ..models import ModelConfig

    if task.kind == "cls" and isinstance(small.config, ModelConfig):  # (a BERT projection is a classifier already)
        from ..train.finetune import classifier_from_lm

        small = classifier_from_lm(small, task, seed).eval()
    seconds = time.perf_counter() - t0
    return small, {"method": method, "big": str(big_dir), "seconds": seconds, **info}


def project(big_dir: str | Path, task_name, method: str, out: str | Path, **opts) -> dict:
    """Project and write an ordinary small checkpoint (atomically) with the task's tokenizer. Returns info."""
    from ..fsutil import atomic_dir
    from ..models.checkpoint import write_model_files
    from ..tasks import get_task
    from ..tasks.tokenizers import save_tokenizer

    task = get_task(task_name) if isinstance(task_name, str) else task_name
    task = task_for_big(big_dir, task)
    small, info = project_model(big_dir, task, method, **opts)
    meta = {"task": task.name, "task_kind": task.kind, "metric": task.metric, "projection": info}
    with atomic_dir(out) as tmp:
        if hasattr(small, "save_pretrained"):  # a transformers model (BERT family)
            import json

            small.save_pretrained(str(tmp), safe_serialization=True)
            (tmp / "projdeploy.json").write_text(json.dumps({"kind": "small", **meta}, indent=2, sort_keys=True))
        else:
            write_model_files(tmp, small, meta)
        save_tokenizer(task.tokenizer, tmp)
    return {**info, "out": str(out)}
