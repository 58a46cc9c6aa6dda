"""Validation of an artifact against the float PyTorch model, on the task's eval inputs.

    python -c "from exporters.validate import sqnr_db; import numpy as np; print(sqnr_db(np.ones(4), np.ones(4)*1.01))"

``call(program, [np arrays]) -> [np arrays]`` is the artifact in its real
runtime (or, for Core ML on Linux, the PyTorch-side simulation of the same
compression). Float recipes must match within ``atol`` (max abs difference);
quantized ones must keep ``sqnr_floor_db``; both must keep the task metric
within ``max_metric_drop``. Any failure raises :class:`ParityError` with the
numbers; the figures are recorded in the manifest either way they pass.
"""

from __future__ import annotations

import math

import numpy as np

from .base import ParityError


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``out`` against ``ref`` in dB (inf when equal)."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / noise)


def eval_inputs(task, max_rows: int | None) -> np.ndarray:
    rows = task.eval.tokens if max_rows is None else task.eval.tokens[:max_rows]
    return np.ascontiguousarray(task.model_inputs(rows), dtype=np.int64)


def reference_outputs(model, x: np.ndarray, batch: int = 64) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(torch.as_tensor(x[i : i + batch])).float().numpy())
    return np.concatenate(outs)


def main_program(programs) -> str:
    names = [p.name if hasattr(p, "name") else p for p in programs]
    return "forward" if "forward" in names or not names else names[0]


def runtime_outputs(call, program: str, x: np.ndarray) -> np.ndarray:
    """Row by row through the artifact (static batch 1), first output (logits)."""
    return np.concatenate([np.asarray(call(program, [x[i : i + 1]])[0], np.float32) for i in range(len(x))])


def validate(
    call, program_names, model, task, recipe, max_rows: int | None = 256, simulated: bool = False, localize=None
) -> tuple[dict, list]:
    """Measure parity/SQNR/metric; raise ParityError on failure. Returns (figures, vector cases).

    Per output (``logits``): float recipes must stay within the scale-aware bound
    ``atol + rtol * max|reference|`` (exporters/tolerance.py), quantized ones above their SQNR floor.
    ``localize(inputs) -> Divergence | None`` (exporters/localize.py), when given, runs on a failure of
    that criterion and names the first module whose own output fails it."""
    from projdeploy.tasks.metrics import metric_from_outputs

    x = eval_inputs(task, max_rows)
    prog = main_program(program_names)
    ref = reference_outputs(model, x)
    out = runtime_outputs(call, prog, x)
    fig = {
        "rows": int(len(x)),
        "program": prog,
        "simulated": simulated,
        "max_abs_diff": float(np.max(np.abs(ref - out))),
        "sqnr_db": _finite(sqnr_db(ref, out)),
    }
    ref_m = metric_from_outputs(task, [ref], task.eval)
    art_m = metric_from_outputs(task, [out], task.eval)
    fig.update(
        {
            "metric": task.metric,
            "metric_float": ref_m["value"],
            "metric_artifact": art_m["value"],
            "metric_drop": task.metric_drop(ref_m["value"], art_m["value"]),
        }
    )
    budget = recipe.max_metric_drop if recipe.max_metric_drop is not None else task.budget["max_metric_drop"]
    fig["thresholds"] = {
        "atol": recipe.atol,
        "rtol": recipe.rtol,
        "sqnr_floor_db": recipe.sqnr_floor_db,
        "max_metric_drop": budget,
    }
    failures = output_failures(fig, recipe, {"logits": (ref, out)})
    if fig["metric_drop"] > budget:
        failures.append(f"{task.metric} drop {fig['metric_drop']:.4f} > budget {budget:g}")
    fig["passed"] = not failures
    if failures and localize is not None and not all(f.startswith(task.metric) for f in failures):
        failures.append(_localized(fig, localize, x[: min(4, len(x))]))
    if failures:
        raise ParityError(
            f"{recipe.format}/{recipe.name} failed validation on task {task.name!r} ({'; '.join(failures)})", fig
        )
    cases = [
        {"inputs": {"input_ids": x[i : i + 1].tolist()}, "outputs": {"logits": out[i : i + 1].tolist()}}
        for i in range(min(2, len(x)))
    ]
    return fig, cases


def output_failures(fig: dict, recipe, pairs: dict) -> list[str]:
    """Per output: the scale-aware float bound (exporters/tolerance.py) or the SQNR floor.
    Records ``fig["outputs"][name]``; returns the failure messages."""
    from .tolerance import compare

    failures, outs = [], {}
    for name, pair in pairs.items():
        if pair is None:
            continue
        ref, out = pair
        rec = {"sqnr_db": _finite(sqnr_db(ref, out))}
        if recipe.tolerance is not None:
            c = compare(name, ref, out, recipe.tolerance)
            rec.update(c.to_dict())
            if not c.passed:
                failures.append(c.failure())
        else:
            rec["max_abs_diff"] = float(np.max(np.abs(np.asarray(ref) - np.asarray(out))))
            rec["sqnr_floor_db"] = recipe.sqnr_floor_db
            rec["passed"] = rec["sqnr_db"] >= recipe.sqnr_floor_db
            if not rec["passed"]:
                failures.append(f"{name}: SQNR {rec['sqnr_db']:.2f} dB < floor {recipe.sqnr_floor_db:g} dB")
        outs[name] = rec
    fig["outputs"] = outs
    return failures


def _localized(fig: dict, localize, x) -> str:
    try:
        div = localize([x])
    except Exception as e:  # localisation is a diagnostic: never hide the real failure behind its own
        fig["localization"] = {"error": f"{type(e).__name__}: {e}"}
        return f"localisation failed ({type(e).__name__}: {e})"
    if div is None:
        fig["localization"] = None
        return "no single module's output fails the criterion (the error builds up across modules)"
    fig["localization"] = div.to_dict()
    return div.message()


def _finite(v: float) -> float:
    return 999.0 if math.isinf(v) else float(v)
