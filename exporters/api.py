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

from pathlib import Path

VECTORS = "test_vectors.json"


def calibration_batches(task, rows: int = 64, batch: int = 8) -> list:
    """Train-split inputs (never eval rows) for calibration, in batches."""
    toks = task.train.tokens[:rows]
    x = toks[:, :-1] if task.kind == "lm" else toks
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
    """The PyTorch-side simulation of a recipe whose runtime cannot run here."""
    from dataclasses import replace

    from .coreml_sim import simulate
    from .programs import programs_for

    sim = replace(src, model=simulate(src.model, recipe))
    return torch_caller(programs_for(sim, task, kv_cache=fmt.KV_CACHE, dynamic=False))


def _runtime_note(fmt, recipe) -> str:
    if fmt.FORMAT == "coreml":
        return "Core ML predictions need macOS; figures come from the same compression simulated in PyTorch"
    return f"the {recipe.backend} delegate's runtime is not on this machine; figures are a PyTorch simulation"


def ort_parity(directory, call, task, recipe, rows: int = 16) -> dict:
    """The .ort file must give the .onnx file's outputs (same graph, mobile format)."""
    import numpy as np

    from .base import ParityError
    from .onnx_export import ORT_FILE, ONNXRunner
    from .validate import eval_inputs, runtime_outputs

    x = eval_inputs(task, rows)
    a = runtime_outputs(call, "forward", x)
    b = runtime_outputs(ONNXRunner(Path(directory) / ORT_FILE).run, "forward", x)
    fig = {"file": ORT_FILE, "rows": len(x), "max_abs_diff_vs_onnx": float(np.max(np.abs(a - b)))}
    if fig["max_abs_diff_vs_onnx"] > 1e-4:
        raise ParityError(f"{ORT_FILE} does not match model.onnx", fig)
    return fig


def export_checkpoint(
    checkpoint_dir, format: str, recipe, task_name: str, out_dir, validate: bool = True, max_rows: int | None = 256
):
    """Export ``checkpoint_dir`` for ``task_name`` with ``format``/``recipe`` into ``out_dir`` -> Artifact."""
    from projdeploy.fsutil import atomic_dir, atomic_write_json
    from projdeploy.tasks import get_task
    from projdeploy.tasks.tokenizers import save_tokenizer

    from .base import write_manifest
    from .programs import programs_for
    from .registry import get_format, get_recipe
    from .sources import load_source
    from .validate import validate as run_validation

    fmt = get_format(format)
    rec = get_recipe(format, recipe)
    task = get_task(task_name)
    fmt.check_available(rec)
    src = load_source(checkpoint_dir, task)
    programs = programs_for(src, task, kv_cache=fmt.KV_CACHE, dynamic=fmt.DYNAMIC)
    names = [p.name for p in programs]
    cal = calibration_batches(task, getattr(rec, "calibration_rows", 64))
    with atomic_dir(out_dir) as tmp:
        art = fmt.export(
            src.model,
            task.example_inputs(1),
            rec,
            tmp,
            programs=programs,
            calibration=cal,
            checkpoint_dir=src.path,
            kind=src.kind,
        )
        save_tokenizer(task.tokenizer, tmp)
        runner = fmt.runner_for_artifact(art)
        simulated = runner is None
        call = simulated_caller(src, task, fmt, rec) if simulated else runner.run
        figures = dict(art.validation)
        if simulated:
            figures["runtime"] = _runtime_note(fmt, rec)
        if validate:
            fig, cases = run_validation(call, names, src.model, task, rec, max_rows, simulated)
            figures.update(fig)
            if getattr(rec, "ort_format", False):
                figures["ort"] = ort_parity(tmp, call, task, rec)
        else:
            from .validate import eval_inputs, main_program

            x = eval_inputs(task, 2)
            prog = main_program(names)
            cases = [
                {
                    "inputs": {"input_ids": x[i : i + 1].tolist()},
                    "outputs": {"logits": call(prog, [x[i : i + 1]])[0].tolist()},
                }
                for i in range(len(x))
            ]
            figures.update({"skipped": "validate=False", "passed": None})
        atol = rec.atol if rec.atol is not None else 0.05
        atomic_write_json(
            tmp / VECTORS,
            {
                "program": "prefill" if "prefill" in names else "forward",
                "cases": cases,
                "atol": atol,
                "simulated": simulated,
            },
        )
        art.model = model_info(src, task)
        art.validation = figures
        m = write_manifest(
            tmp,
            format=fmt.FORMAT,
            recipe=rec,
            main_file=art.main_file,
            programs=art.programs,
            model=art.model,
            validation=figures,
        )
        art.files = m["files"]
    art.path = Path(out_dir)
    return art
