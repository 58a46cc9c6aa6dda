"""A fixed CPU micro-benchmark to normalise host timings across machines and runs.

    python -c "from projdeploy.check.calibration import run_calibration; print(run_calibration())"

A 256x256 float32 matmul repeated 200 times on one torch thread: the same work everywhere, so
``host_latency / calibration.median_s`` compares runs made on different (or differently loaded)
machines. It is the one calibration of the project: ``check`` records it in every report and the gate
divides measured host latency by it. ``host_peak_gflops`` turns it into the effective GFLOPS the host
roofline uses.
"""

from __future__ import annotations

import statistics
import time

N, REPS = 256, 200
NAME = f"matmul-f32-{N}x{N}x{REPS}-1thread"


def run_calibration(repeats: int = 7, warmup: int = 20, clock=time.perf_counter) -> dict:
    """Time the fixed workload ``repeats`` times: ``{"name", "samples_s", "median_s"}``.

    ``warmup``: untimed products first. ``clock`` must be the clock the model's timings use: wall time
    (``perf_counter``, the default) or this thread's CPU time (``time.thread_time``, immune to preemption on
    a loaded machine; the gate's real-timing test uses it).
    """
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(N, N, generator=g)
        b = torch.randn(N, N, generator=g)
        for _ in range(warmup):
            a @ b
        out = []
        for _ in range(repeats):
            t0 = clock()
            for _ in range(REPS):
                a @ b
            out.append(clock() - t0)
    finally:
        torch.set_num_threads(prev)
    return {"name": NAME, "samples_s": out, "median_s": statistics.median(out)}


def host_peak_gflops(cal: dict) -> float:
    """Effective single-thread fp32 GFLOPS measured by the calibration."""
    return 2.0 * N**3 * REPS / cal["median_s"] / 1e9


def host_bandwidth_gbs(mb: int = 64, samples: int = 5) -> float:
    """Single-thread copy bandwidth (read + write) in GB/s, median of ``samples``."""
    import numpy as np

    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    ts = []
    for _ in range(samples):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        ts.append(time.perf_counter() - t0)
    return 2 * src.nbytes / statistics.median(ts) / 1e9
