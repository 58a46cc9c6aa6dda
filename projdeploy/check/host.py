"""Host measurement: latency (median, p90) after warm-up, peak memory, and the task metric.

    python -c "from projdeploy.check.host import measure_host; help(measure_host)"

Runs the artifact in its real runtime on this machine through its format's
``runner(artifact, threads)`` with a stated number of threads. Memory: the process's
resident-set growth while loading and running the artifact (``/proc/self/statm``) and the
process peak (``ru_maxrss``); both are host figures, not device figures.
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_program(runner, program: str, inputs: list, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        runner.run(program, inputs)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.run(program, inputs)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def artifact_metric(runner, art, task, max_rows: int) -> dict:
    from projdeploy.tasks.metrics import metric_from_outputs

    prog = "forward"
    s = task.eval
    n = min(len(s), max_rows)
    outs = []
    for i in range(n):
        x = task.model_inputs(s.tokens[i : i + 1])
        outs.append(np.asarray(runner.run(prog, [x.astype(np.int64)])[0], dtype=np.float32))
    return metric_from_outputs(task, outs, s.subset(np.arange(n)))


def _time_decode(runner, prompt: list, token: int, repeats: int, warmup: int) -> list[float]:
    """One token per call after ``prompt``; a full window starts over with an untimed prefill."""
    runner.prefill(prompt)
    out = []
    for i in range(warmup + repeats):
        if runner.pos + 1 > runner.max_seq_len:
            runner.prefill(prompt)
        t0 = time.perf_counter()
        runner.forward([token])
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def lm_program_host(runner, art, task, repeats: int, warmup: int, metric_rows: int) -> tuple[dict, dict, int]:
    """An LM program (exporters/llm): (timings of ``prefill`` of half an eval row and ``decode`` per token,
    the task metric on the rows export validated, prompt tokens)."""
    from exporters.llm.artifact import DEFAULT_ROWS, lm_eval_rows, runner_metric

    rows = min(metric_rows, int(art.validation.get("rows") or DEFAULT_ROWS))
    ev = lm_eval_rows(task, rows, int(art.model["lm"]["max_seq_len"]))
    prompt = ev.rows[0, : ev.n_prompt].tolist()
    pre = time_program(_Prefill(runner, prompt), "prefill", [], repeats, warmup)
    dec = _time_decode(runner, prompt, int(ev.rows[0, ev.n_prompt]), repeats, warmup)
    return {"prefill": pre, "decode": dec}, runner_metric(runner, ev), len(prompt)


class _Prefill:
    def __init__(self, runner, prompt):
        self.runner, self.prompt = runner, prompt

    def run(self, program, inputs):
        return self.runner.prefill(self.prompt)


def measure_host(art, task, *, repeats: int = 20, warmup: int = 3, threads: int = 1, metric_rows: int = 256) -> dict:
    """Measured on this host for an :class:`~exporters.base.Artifact`; ``{"available": False, "reason": ...}``
    where its runtime cannot run here."""
    from exporters.registry import get_format

    fmt = get_format(art.format)
    gap = fmt.host_gap(art.recipe)
    if gap:
        return {"available": False, "reason": f"{art.format}/{art.recipe.name}: {gap}"}
    rss0 = _rss_mb()
    runner = fmt.runner(art, threads)
    prompt = None
    if isinstance(art.model.get("lm"), dict):
        timings, metric, prompt = lm_program_host(runner, art, task, repeats, warmup, metric_rows)
    else:
        x = task.example_inputs(1).astype(np.int64)
        timings = {"forward": time_program(runner, "forward", [x], repeats, warmup)}
        metric = artifact_metric(runner, art, task, metric_rows)
    rss1 = _rss_mb()
    out = {
        "available": True,
        "threads": threads,
        "repeats": repeats,
        "warmup": warmup,
        "runtime": art.format,
        "programs": {},
        "metric": metric,
        "rss_growth_mb": None if rss0 is None or rss1 is None else max(0.0, rss1 - rss0),
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if prompt is not None:
        out["lm"] = {"prompt_tokens": prompt, "note": "prefill: one call on the prompt; decode: one token per call"}
    for prog, ts in timings.items():
        out["programs"][prog] = {
            "samples_ms": ts,
            "median_ms": statistics.median(ts),
            "p90_ms": float(np.percentile(ts, 90)),
            "min_ms": min(ts),
        }
    return out


def float_metric(checkpoint_dir, task, rows: int) -> dict:
    from projdeploy.models.checkpoint import load_model
    from projdeploy.tasks.metrics import evaluate

    return evaluate(load_model(checkpoint_dir), task, max_rows=rows)
