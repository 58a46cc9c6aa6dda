"""Memory estimate: weights + activations + KV cache + runtime overhead, against the app budget.

    python -c "from projdeploy.check.memory import memory_estimate; help(memory_estimate)"

Weights are the real model file size (runtimes map or load it whole). Activations: the graph's
live-tensor peak (tensors alive at once in execution order, at the activation precision) times the
runtime family's fitted arena factor; for traced graphs the largest single operator's inputs + outputs.
KV cache: 2 x layers x kv_heads x head_dim x context x bytes. Runtime overhead: fitted per runtime
family on published peak-memory figures (profiles/_runtimes.yaml), else the profile's figure or a
stated assumption.
"""

from __future__ import annotations

MB = 2**20


def memory_estimate(
    *, weight_bytes: float, ops, kv_cache_bytes: float, params, budget_mb, act_peak_bytes: float | None = None
) -> dict:
    """``act_peak_bytes``: the graph's live-tensor peak (ONNX graphs); scaled by the runtime family's fitted
    arena factor. Without it (traced graphs), the largest single operator's inputs + outputs."""
    if act_peak_bytes is not None:
        act, act_src = act_peak_bytes * params.act_arena_factor, "live-tensor peak x arena factor"
    else:
        act, act_src = max((o.act_bytes for o in ops), default=0.0), "largest operator's inputs + outputs"
    parts = {
        "weights_mb": weight_bytes / MB,
        "activations_mb": act / MB,
        "kv_cache_mb": kv_cache_bytes / MB,
        "runtime_overhead_mb": float(params.runtime_overhead_mb),
    }
    total = sum(parts.values())
    fits = None if budget_mb is None else total <= budget_mb
    return {
        **parts,
        "total_mb": total,
        "app_budget_mb": budget_mb,
        "fits_app_budget": fits,
        "activations_from": act_src,
        "note": "" if budget_mb is not None else "profile has no app memory budget: fit not judged",
    }


def kv_cache_bytes(art) -> float:
    """Bytes of the KV cache an LM program :class:`~exporters.base.Artifact` declares (manifest
    ``model.lm.kv_cache_bytes``: K and V of every layer over the window), else 0."""
    lm = art.model.get("lm")
    if isinstance(lm, dict) and lm.get("kv_cache_bytes") is not None:
        return float(lm["kv_cache_bytes"])
    return 0.0
