"""Checkpoint + LM task -> validated LM program artifact, for every format that has one.

    projdeploy export --checkpoint runs/lm --format executorch --recipe xnnpack-8da4w --task pycode --out out/lm-et

``export_lm_artifact`` asks the format (``Format.export_lm``) for its program files, validates them
through the format's own LM runner on the task's eval rows (teacher-forced: prefill of half a row,
then one call per token, against one forward of the float ``transformers`` model), writes the small
binary ``test_vectors.npz``, the tokenizer files and ``manifest.json`` (``model.lm`` says how to drive
the program), and returns ``Artifact.read(out_dir)``. Where the runtime cannot run here (Core ML on
Linux) the package is converted and the manifest says it was not validated. The directory appears
atomically; a failed validation raises ``ParityError`` and leaves nothing behind.

The task metric of an LM program (bits per byte, or per token) is measured the same way by export
(float model and artifact) and by ``projdeploy check`` (artifact, :func:`runner_metric`) on the same
rows (:func:`lm_eval_rows`), so the two figures compare.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROWS = 8  # eval rows validated (each costs one runner call per token)


@dataclass(frozen=True)
class LMEvalRows:
    """Eval rows of an LM task as LM programs are validated and measured on them."""

    rows: np.ndarray  # (R, T) int64; each row's last token is only a target
    n_prompt: int  # tokens prefilled in one call; the rest are fed one per call
    total_bytes: int  # bytes of the scored targets (tokens n_prompt..T-1)
    metric: str  # the task's metric: "bits_per_byte" or bits per token


def lm_eval_rows(task, max_rows: int | None = DEFAULT_ROWS, window: int | None = None) -> LMEvalRows:
    """The first ``max_rows`` eval rows of ``task``, cut to ``window`` + 1 tokens."""
    rows = np.asarray(task.eval.tokens[: max_rows or DEFAULT_ROWS], np.int64)
    if window is not None:
        rows = rows[:, : window + 1]
    n = rows.shape[1] // 2
    total = int(task.tokenizer.token_bytes(rows[:, n:]).sum())
    return LMEvalRows(rows, n, total, task.metric)


def runner_metric(runner, ev: LMEvalRows) -> dict:
    """The task metric of an LM runner on ``ev`` (the ``metric_from_outputs`` shape: metric, value, n)."""
    from .validate import _log_softmax as log_softmax
    from .validate import artifact_logits

    bits, positions = 0.0, 0
    for row in ev.rows:
        lp = log_softmax(artifact_logits(runner, row, ev.n_prompt))
        targets = row[ev.n_prompt :]
        bits -= float(lp[np.arange(len(targets)), targets].sum()) / math.log(2)
        positions += len(targets)
    value = bits / max(ev.total_bytes if ev.metric == "bits_per_byte" else positions, 1)
    return {"metric": ev.metric, "value": value, ev.metric: value, "n": int(len(ev.rows)), "tokens": positions}


def _float_model(checkpoint: Path):
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(str(checkpoint), use_safetensors=True, local_files_only=True)
    return hf.float().eval()


def validate_lm(runner, checkpoint: Path, recipe, ev: LMEvalRows, fmt_name: str) -> dict:
    """Teacher-forced figures of ``runner`` against the float model; ParityError on the recipe's floors."""
    from ..base import ParityError
    from .validate import check, compare_rows

    fig = compare_rows(runner, _float_model(checkpoint), ev.rows, ev.n_prompt, ev.total_bytes)
    per = "bits_per_byte" if ev.metric == "bits_per_byte" else "bits_per_token"
    fig.update(metric=ev.metric, metric_float=fig[f"{per}_float"], metric_artifact=fig[per])
    failures = check(fig, recipe)
    fig["passed"] = not failures
    if failures:
        raise ParityError(f"{fmt_name}/{recipe.name} LM program failed validation ({'; '.join(failures)})", fig)
    return fig


def _tokenizer_files(checkpoint: Path, task, tmp: Path) -> list[str]:
    """The checkpoint's own tokenizer files (a pretrained LM's ``tokenizer.json``...) and the task's
    ``projdeploy_tokenizer.json`` (every artifact carries it; a BPE task's nests its tokenizer)."""
    from projdeploy.tasks.tokenizers import TOKENIZER_FILE

    from .export_lm import _copy_tokenizer

    names = _copy_tokenizer(checkpoint, tmp)
    (tmp / TOKENIZER_FILE).write_text(json.dumps(task.tokenizer.to_dict(), indent=1, sort_keys=True))
    return sorted({*names, TOKENIZER_FILE})


def model_section(task, checkpoint: Path, spec, written, tok_files: list[str]) -> dict:
    """The manifest's ``model``: the task, the Hugging Face config and ``lm`` (how to drive the program)."""
    from projdeploy.tasks.tokenizers import TOKENIZER_FILE

    from .export_lm import lm_section

    lm = lm_section(spec, written.runner_metadata)
    lm.update(program=written.program, kv_cache=written.kv_cache)
    lm["kv_cache_bytes"] = spec.kv_cache_bytes * written.kv_value_bytes // 4
    if written.protocol:
        lm["protocol"] = written.protocol
    if written.kv_io:
        lm["kv_io"] = [list(pair) for pair in written.kv_io]
    if written.prefill_len is not None:
        lm["prefill_len"] = written.prefill_len
    return {
        "task": task.name,
        "task_kind": "lm",
        "modality": task.modality,
        "config": json.loads((checkpoint / "config.json").read_text()),
        "labels": [],
        "image_shape": list(task.image_shape) if task.image_shape else None,
        "tokenizer_file": TOKENIZER_FILE,
        "tokenizer_files": tok_files,
        "architecture": spec.architecture,
        "seq_len": task.seq_len,
        "metric": task.metric,
        "lm": lm,
    }


def _lm_task(task, checkpoint):
    from projdeploy.tasks import get_task
    from projdeploy.tasks.hf_tokenizer import task_for_checkpoint

    task = task_for_checkpoint(get_task(task) if isinstance(task, str) else task, checkpoint)
    if task.kind != "lm":
        from projdeploy.errors import ConfigError

        raise ConfigError("--task", "task", f"{task.name!r} is a {task.kind!r} task; LM programs need an 'lm' task")
    return task


def _figures(fmt, art, checkpoint, rec, ev, validate: bool, threads) -> tuple[dict, object]:
    """(validation figures, runner or None where the format's runtime cannot run here)."""
    gap = fmt.host_gap(rec)
    if gap:
        return {"runtime": gap, "skipped": "the runtime cannot run on this machine", "passed": None}, None
    runner = fmt.runner(art, threads or 1)
    if not validate:
        return {"skipped": "validate=False", "passed": None}, runner
    return validate_lm(runner, checkpoint, rec, ev, fmt.name), runner


def export_lm_artifact(
    checkpoint_dir, format: str, recipe, task, out_dir, validate: bool = True, max_rows=DEFAULT_ROWS, threads=None
):
    """The LM program of ``checkpoint_dir`` for ``task`` in ``format`` with ``recipe`` (an LM recipe name or
    object), validated on ``max_rows`` eval rows; the window is the recipe's or the task's row length."""
    from projdeploy.fsutil import atomic_dir

    from ..base import Artifact, write_manifest
    from ..registry import get_format
    from .spec import lm_spec_from_dir
    from .vectors import make_vectors, write_vectors

    fmt, ckpt = get_format(format), Path(checkpoint_dir)
    rec = fmt.recipe(recipe, lm=True)
    task = _lm_task(task, ckpt)
    spec = lm_spec_from_dir(ckpt, rec.max_seq_len or task.eval.tokens.shape[1] - 1)  # the last token: a target
    ev = lm_eval_rows(task, max_rows, spec.max_seq_len)
    fmt.check_available(rec)
    with atomic_dir(out_dir) as tmp:
        written = fmt.export_lm(ckpt, spec, rec, tmp)
        model = model_section(task, ckpt, spec, written, _tokenizer_files(ckpt, task, tmp))
        art = Artifact(tmp, fmt.name, rec, written.main_file, written.programs, model=model)
        fig, runner = _figures(fmt, art, ckpt, rec, ev, validate, threads)
        if runner is not None:
            atol = 1e-3 if rec.quantized else 1e-4
            write_vectors(tmp, make_vectors(runner, ev.rows[0, : min(8, ev.n_prompt)], rtol=1e-4, atol=atol))
        fig.update(written.figures)
        write_manifest(
            tmp,
            format=fmt.name,
            recipe=rec,
            main_file=art.main_file,
            programs=art.programs,
            model=model,
            validation=fig,
        )
    return Artifact.read(out_dir)
