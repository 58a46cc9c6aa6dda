"""Budgets: what an artifact must meet, from the task's default section or a budget file.

    projdeploy check --artifact out/cls-onnx --task digits-cls --profile pixel-8 --budget budget.yaml

Budget file (YAML or JSON; every field optional; schema in docs/check.md)::

    max_size_mb: 5.0            # artifact main file
    max_memory_mb: 300          # estimated peak memory on each profile (and host measured)
    max_metric_drop: 0.02       # task metric, artifact vs float model (direction-aware)
    max_latency_ms: {pixel-8: 20, iphone-13: 25, default: 50}   # estimated, per profile
    min_decode_tok_s: {galaxy-s24: 20}                          # language models only
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

FIELDS = {"max_size_mb", "max_memory_mb", "max_metric_drop", "max_latency_ms", "min_decode_tok_s"}
PER_PROFILE = {"max_latency_ms", "min_decode_tok_s"}


def validate_budget(b: dict, source: str) -> dict:
    if not isinstance(b, dict):
        raise ConfigError(source, "(top level)", "must be a mapping of budget fields")
    out = {}
    for k, v in b.items():
        if k not in FIELDS:
            raise ConfigError(source, k, f"unknown budget field; allowed: {', '.join(sorted(FIELDS))}")
        if k in PER_PROFILE:
            if v is None:
                v = {}
            if not isinstance(v, dict):
                raise ConfigError(source, k, "must map profile names (or 'default') to numbers")
            for pk, pv in v.items():
                if isinstance(pv, bool) or not isinstance(pv, (int, float)) or pv <= 0:
                    raise ConfigError(source, f"{k}.{pk}", f"must be a positive number, got {pv!r}")
            out[k] = {str(pk): float(pv) for pk, pv in v.items()}
        elif v is None:
            out[k] = None
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(source, k, f"must be a non-negative number or null, got {v!r}")
        else:
            out[k] = float(v)
    return out


def load_budget(task, budget_file: str | Path | None = None) -> tuple[dict, str]:
    """(budget, where it came from): the task's default budget, overridden field by field by the file."""
    base = validate_budget(dict(task.budget), f"task {task.name} default budget")
    if budget_file is None:
        return base, f"task {task.name} default budget"
    p = Path(budget_file)
    if not p.is_file():
        raise ConfigError(str(p), "(file)", "budget file does not exist")
    text = p.read_text()
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file
        raise ConfigError(str(p), "(parse)", f"not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {e}") from None
    over = validate_budget(data or {}, str(p))
    return {**base, **over}, f"{p} over the task default"


def per_profile(budget: dict, field: str, profile: str) -> float | None:
    d = budget.get(field) or {}
    return d.get(profile, d.get("default"))


def line(
    name: str,
    value,
    limit,
    *,
    kind: str,
    profile: str | None = None,
    unit: str = "",
    higher_is_better: bool = False,
    note: str = "",
) -> dict:
    """One budget line; ``passed`` is None when there is no limit or no value."""
    if limit is None or value is None:
        passed = None
    else:
        passed = value >= limit if higher_is_better else value <= limit
    return {
        "name": name,
        "profile": profile,
        "value": value,
        "limit": limit,
        "unit": unit,
        "kind": kind,
        "passed": passed,
        "note": note,
    }
