"""Builders for the gate tests (no tests here): report dicts and seeded, realistically noisy CI timings."""

from __future__ import annotations

import numpy as np

CAL_TRUE_S = 0.050  # the calibration benchmark's cost on the reference machine


def fig(
    key,
    name="size_bytes",
    value=1000.0,
    kind="deterministic",
    hib=False,
    tol=None,
    samples=None,
    unit="B",
    artifact="model.onnx",
    profile=None,
):
    d = {
        "key": key,
        "artifact": artifact,
        "profile": profile,
        "name": name,
        "value": float(value),
        "unit": unit,
        "kind": kind,
        "higher_is_better": hib,
        "tolerance": tol,
    }
    if samples is not None:
        d["samples"] = [float(x) for x in samples]
    return d


def report(figures, cal_samples=None, schema="projdeploy.report/1"):
    r = {"schema": schema, "figures": list(figures)}
    if cal_samples is not None:
        r["calibration"] = {
            "name": "matmul-256",
            "samples_s": [float(x) for x in cal_samples],
            "median_s": float(np.median(cal_samples)),
        }
    return r


def noisy(rng, true, n, sigma=0.08, outlier_p=0.08):
    """``n`` timings: lognormal jitter plus occasional 1.5-3x outliers (another process stole the core)."""
    x = true * np.exp(rng.normal(0.0, sigma, n))
    hit = rng.random(n) < outlier_p
    x[hit] *= rng.uniform(1.5, 3.0, hit.sum())
    return x


def ci_job(rng, model_ms, machine=None, n=30, n_cal=15):
    """One CI job: (model samples in ms, calibration samples in s) on a runner of random speed.

    The machine factor slows model and calibration alike; the model also gets
    a small job-level drift of its own (normalisation is never perfect).
    """
    machine = rng.uniform(0.8, 1.6) if machine is None else machine
    drift = float(np.exp(rng.normal(0.0, 0.02)))
    return noisy(rng, model_ms * machine * drift, n), noisy(rng, CAL_TRUE_S * machine, n_cal, sigma=0.05)


def latency_report(model_ms, cal_s, size=1000.0):
    return report(
        [
            fig(
                "m/host_latency_ms",
                "host_latency_ms",
                float(np.median(model_ms)),
                "measured",
                unit="ms",
                samples=model_ms,
            ),
            fig("m/size_bytes", value=size),
        ],
        cal_s,
    )
