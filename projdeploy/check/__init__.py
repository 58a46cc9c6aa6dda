"""The check stage: device profiles, latency/memory estimation, host measurement, budgets, reports.

    projdeploy check --artifact out/cls-onnx --task digits-cls --profile pixel-8

Public API: ``run_check`` (artifacts, task, profiles -> one :class:`projdeploy.report.Report`, writes
report.json/html), ``calibration.run_calibration`` (the one host calibration benchmark),
``profiles.get_profile``, ``estimator.resolve_params`` / ``estimate_forward`` / ``estimate_lm``.
"""

from __future__ import annotations


def run_check(*args, **kwargs):
    from .run import run_check as _run

    return _run(*args, **kwargs)


run_check.__doc__ = "See projdeploy.check.run.run_check."
