"""The gate on REAL timings: ``.venv/bin/python -m pytest tests/test_gate_real.py -q`` (about 2 min on a loaded 2-core host, marked slow).

The "model" is a real forward pass of a tiny 2-layer classifier, timed
in-process; one inference is 10 forwards, and the injected slowdown makes it
13 forwards: 30% more real compute. Calibration is the project's one micro-benchmark
(``projdeploy.check.calibration.run_calibration``). Baseline, slowed and unchanged
inferences and one calibration sample per "job" are interleaved round by
round, so that load from other processes on this shared machine hits all
series alike; the test is about the gate's decision on real noise, not about
how fast anything is. Both the model and the calibration are timed with this
thread's CPU time (torch runs one thread in tests): on this shared 2-core
machine, wall time under a load of 8 swings 2x from preemption alone.

How many rounds: like a careful CI job, the test measures in blocks of 20
rounds until the gate's confidence intervals are narrower than +-8% (or 120
rounds). The stopping rule looks only at the width of the intervals, never
at the verdict, so it cannot steer the outcome.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_gate_helpers import latency_report

from projdeploy.check.calibration import run_calibration
from projdeploy.gate import compare, parse_figures
from projdeploy.gate.compare import FAIL

BASE_REPS, SLOW_REPS, BLOCK, MAX_ROUNDS, MAX_HALF_WIDTH = 10, 13, 20, 120, 0.08
CLOCK = time.thread_time


def _timed(fn, reps: int) -> float:
    fn()  # untimed: re-warm the caches the previous series evicted, so 13 forwards cost 1.3x 10
    t = CLOCK()
    for _ in range(reps):
        fn()
    return (CLOCK() - t) * 1e3


def _verdicts(series: dict, cals: dict) -> dict:
    baseline = parse_figures(latency_report(np.array(series["base"]), cals["baseline"]), "baseline.json")
    out = {}
    for label in ("slow", "same"):
        cur = parse_figures(latency_report(np.array(series[label]), cals["current"]), "report.json")
        out[label] = next(d for d in compare(cur, baseline, 0.10).diffs if d.key == "m/host_latency_ms")
    return out


@pytest.mark.slow
def test_real_30pct_slowdown_detected_and_unchanged_passes():
    import torch

    from projdeploy.models import build_model, config_for

    model = build_model(config_for("tiny", 19, num_labels=10), seed=0).eval()
    ids = torch.randint(0, 17, (1, 64), generator=torch.Generator().manual_seed(0))
    series = {"base": [], "slow": [], "same": []}
    cals = {"baseline": [], "current": []}
    names = set()
    with torch.inference_mode():

        def forward():
            model(ids)

        for _ in range(5):
            forward()
        while True:
            for _ in range(BLOCK):
                for label, reps in (("base", BASE_REPS), ("slow", SLOW_REPS), ("same", BASE_REPS)):
                    series[label].append(_timed(forward, reps))
                for job in cals:  # the machine drifts within seconds here: calibrate in step
                    cal = run_calibration(repeats=1, warmup=0, clock=CLOCK)
                    cals[job] += cal["samples_s"]
                    names.add(cal["name"])
            v = _verdicts(series, cals)
            widths = [(d.timing.ci_high - d.timing.ci_low) / 2 for d in v.values()]
            if max(widths) < MAX_HALF_WIDTH or len(series["base"]) >= MAX_ROUNDS:
                break
    assert len(names) == 1
    assert v["slow"].status == "regression", (len(series["base"]), v["slow"].detail)
    # The unchanged build must not fail CI. "suspect" (point estimate above 1+10% but the interval
    # reaches below it) is the gate's non-failing warning and is a correct outcome on real noise:
    # one CI run saw ratio 1.107 (90% CI 0.989-1.245) for identical series after 120 rounds.
    assert v["same"].status not in FAIL, (len(series["base"]), v["same"].detail)
    assert 1.15 < v["slow"].timing.ratio < 1.45, v["slow"].detail
