"""Export a checkpoint for a task into a validated, self-describing artifact directory.

    projdeploy export --checkpoint runs/cls --format onnx --recipe fp32 --task digits-cls --out out/cls-onnx

``export_checkpoint`` loads the checkpoint, builds the programs (see
exporters/programs.py), runs the format's exporter, validates the artifact in
its real runtime on the task's eval inputs (Core ML on Linux: the PyTorch-side
simulation of the same compression, flagged ``simulated``), and writes
``manifest.json``, ``projdeploy_tokenizer.json`` and ``test_vectors.json``.
The directory appears atomically; a failed validation leaves nothing behind.
"""

from __future__ import annotations

VECTORS = "test_vectors.json"


def calibration_batches(task, rows: int = 64, batch: int = 8) -> list:
    """Train-split inputs (never eval rows) for calibration, in batches."""
    x = task.model_inputs(task.train.tokens[:rows])
    return [x[i : i + batch] for i in range(0, len(x), batch)]


def model_info(src, task) -> dict:
    from projdeploy.tasks.tokenizers import TOKENIZER_FILE

    return {
        "task": task.name,
        "task_kind": task.kind,
        "modality": task.modality,
        "config": src.hf_config,
        "labels": list(task.labels),
        "image_shape": list(task.image_shape) if task.image_shape else None,
        "tokenizer_file": TOKENIZER_FILE,
        "architecture": src.architecture,
        "seq_len": task.seq_len,
        "metric": task.metric,
    }


def torch_caller(programs):
    """``call(program, [np arrays])`` over eager program modules (simulations, reference outputs)."""
    import numpy as np
    import torch

    mods = {p.name: p.module for p in programs}

    def call(name, inputs):
        with torch.no_grad():
            out = mods[name](*[torch.as_tensor(np.asarray(x)) for x in inputs])
        out = out if isinstance(out, tuple) else (out,)
        return [o.float().numpy() for o in out]

    return call


def simulated_caller(src, task, fmt, recipe):
    """(``call``, simulated model) over the format's PyTorch simulation of a recipe whose runtime cannot
    run here."""
    from dataclasses import replace

    from .programs import programs_for

    sim = replace(src, model=fmt.simulate(src.model, recipe))
    return torch_caller(programs_for(sim, task, dynamic=False)), sim.model


def localizer(fmt, art, src, sim_model=None):
    """``localize(inputs) -> Divergence | None`` for a failed validation (exporters/localize.py): on the
    simulation where the runtime cannot run here, else the format's own (None where its runtime exposes
    no intermediate values)."""
    from .localize import localize_torch

    if sim_model is not None:
        return lambda inputs: localize_torch(src.model, sim_model, inputs, art.recipe)
    return fmt.localizer(art, src.model)


def vectors_atol(recipe, cases) -> float:
    """Replay tolerance stored with the test vectors: the recipe's float bound on the stored outputs (at
    least 1e-4, as another runtime of the same precision replays them), 0.05 for quantized recipes."""
    import numpy as np

    if recipe.tolerance is None:
        return 0.05
    scale = max((float(np.max(np.abs(c["outputs"]["logits"]))) for c in cases), default=0.0)
    return max(1e-4, recipe.tolerance.bound(scale))


def unvalidated_cases(call, names, task) -> list:
    """Test vectors from the artifact itself when validation is skipped."""
    from .validate import eval_inputs, main_program

    x = eval_inputs(task, 2)
    prog = main_program(names)
    return [
        {"inputs": {"input_ids": x[i : i + 1].tolist()}, "outputs": {"logits": call(prog, [x[i : i + 1]])[0].tolist()}}
        for i in range(len(x))
    ]


def check_artifact_figures(fmt, art, src, task, validate: bool, max_rows) -> tuple[dict, list, bool]:
    """Run the artifact (or its simulation) on the task: (figures, test-vector cases, simulated)."""
    from .validate import validate as run_validation

    gap = fmt.host_gap(art.recipe)
    call, sim_model = simulated_caller(src, task, fmt, art.recipe) if gap else (fmt.runner(art).run, None)
    names = list(art.programs)
    figures = dict(art.validation)
    if gap:
        figures["runtime"] = f"{gap}; figures come from the same recipe simulated in PyTorch"
    if not validate:
        figures.update({"skipped": "validate=False", "passed": None})
        return figures, unvalidated_cases(call, names, task), bool(gap)
    loc = localizer(fmt, art, src, sim_model)
    fig, cases = run_validation(call, names, src.model, task, art.recipe, max_rows, bool(gap), loc)
    figures.update(fig)
    figures.update(fmt.extra_validation(art, call, task))
    return figures, cases, bool(gap)


def export_checkpoint(
    checkpoint_dir, format: str, recipe, task, out_dir, validate: bool = True, max_rows=256, lm_program: bool = False
):
    """Export ``checkpoint_dir`` for ``task`` (a name or a Task) with ``format``/``recipe`` into ``out_dir``.

    Returns the finished :class:`Artifact`, read back from the manifest written last.
    A language-model task gets the format's LM program (KV cache kept between calls; exporters/llm, see
    docs/lm-programs.md) with one of its LM recipes, validated on at most 8 eval rows (``lm_program`` is
    accepted for compatibility and changes nothing). ``checkpoint_dir`` may also be a ``.gguf`` file or a
    built-in model name (``projdeploy models list``): its dequantized HF directory is exported with the task
    re-tokenized by its own tokenizer."""
    from projdeploy.foundation.load import export_checkpoint_source
    from projdeploy.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    checkpoint_dir, task = export_checkpoint_source(checkpoint_dir, task)
    if task.kind == "lm":
        from .llm.artifact import export_lm_artifact

        return export_lm_artifact(checkpoint_dir, format, recipe, task, out_dir, validate, min(max_rows or 8, 8))
    from projdeploy.fsutil import atomic_dir, atomic_write_json
    from projdeploy.tasks.hf_tokenizer import task_for_checkpoint
    from projdeploy.tasks.tokenizers import save_tokenizer

    from .base import Artifact, write_manifest
    from .programs import programs_for
    from .registry import get_format
    from .sources import load_source

    fmt = get_format(format)
    rec = fmt.recipe(recipe)
    task = task_for_checkpoint(task, checkpoint_dir)  # a pretrained model's tokenizer re-tokenizes
    fmt.check_available(rec)
    src = load_source(checkpoint_dir, task)
    programs = programs_for(src, task, dynamic=fmt.dynamic)
    with atomic_dir(out_dir) as tmp:
        art = fmt.export(programs, rec, tmp, calibration_batches(task, rec.calibration_rows))
        save_tokenizer(task.tokenizer, tmp)
        figures, cases, simulated = check_artifact_figures(fmt, art, src, task, validate, max_rows)
        vectors = {"program": "forward", "cases": cases}
        vectors.update(atol=vectors_atol(rec, cases), simulated=simulated)
        atomic_write_json(tmp / VECTORS, vectors)
        write_manifest(
            tmp,
            format=fmt.name,
            recipe=rec,
            main_file=art.main_file,
            programs=art.programs,
            model=model_info(src, task),
            validation=figures,
        )
    return Artifact.read(out_dir)
