"""Fallback calibration micro-benchmark for the gate (the check stage owns the real one).

    python -m projdeploy.gate.calibration

A fixed CPU workload timed in the same job as the model, so that measured
host latency can be divided by it: a 1.5x slower CI runner makes both 1.5x
slower and the ratio stays put. :func:`get_calibration` prefers
``projdeploy.check.calibration.run_calibration`` (the contract in
docs/HELPERS.md) and falls back to :func:`run_calibration` here while that
module does not exist. The workload mixes what a small transformer's
inference spends time on: small single-threaded matmuls, elementwise math
and Python-level dispatch.
"""

from __future__ import annotations

import statistics
import time

NAME = "gate-fallback/np-matmul64-exp-loop/1"


def _workload(np, a, b) -> float:
    acc = 0.0
    for _ in range(1500):  # ~20 ms: long enough that scheduler preemption averages out
        c = a @ b  # 64x64 float32: below BLAS's threading threshold
        c = np.tanh(c * 0.01)  # elementwise
        acc += float(c[0, 0])
    return acc


def run_calibration(repeats: int = 10, warmup: int = 1, clock=time.perf_counter) -> dict:
    """Time the fixed workload ``repeats`` times: {"name", "samples_s", "median_s"}.

    ``clock`` must be the clock the model's timings use: wall time
    (``perf_counter``, the default) or this thread's CPU time
    (``time.thread_time``, immune to preemption on a loaded machine).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 64), dtype=np.float32)
    b = rng.standard_normal((64, 64), dtype=np.float32)
    for _ in range(warmup):
        _workload(np, a, b)
    samples = []
    for _ in range(repeats):
        t = clock()
        _workload(np, a, b)
        samples.append(clock() - t)
    return {"name": NAME, "samples_s": samples, "median_s": statistics.median(samples)}


def get_calibration(**kw) -> dict:
    """The check stage's calibration when it exists (and takes ``kw``), else this module's."""
    import inspect

    try:
        from ..check.calibration import run_calibration as check_calibration
    except ImportError:
        return run_calibration(**kw)
    params = inspect.signature(check_calibration).parameters
    if all(k in params for k in kw):
        return check_calibration(**kw)
    return run_calibration(**kw)


if __name__ == "__main__":
    cal = run_calibration()
    print(f"{cal['name']}: median {cal['median_s'] * 1e3:.3f} ms over {len(cal['samples_s'])} runs")
