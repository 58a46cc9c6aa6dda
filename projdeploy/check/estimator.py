"""Roofline latency estimate per (device profile, runtime, precision).

    python -c "from projdeploy.check.estimator import *; from projdeploy.check.ops import *; \
print(estimate_lm(TransformerShape(128256, 2048, 8192, 16, 32, 8, tie_word_embeddings=True), \
PRECISIONS['bf16'], resolve_params('galaxy-s24', 'executorch-xnnpack', 'bf16'), prompt=64))"

Per operator: ``t = max(flops / (peak * compute_eff), bytes / (bandwidth * bandwidth_eff)) + dispatch``.
Single-forward models sum the operators. Language models: prefill of the prompt (logits of the
last position only), time to first token, and decode tokens/s, where a decode step is
bandwidth-bound plus a per-token overhead (runtime-specific; the published data shows it dominates
below ~0.5B parameters). A cold-start factor scales the first run.

Every profile number may be unknown (``null``); ``resolve_params`` then takes a documented
fallback and records it in ``assumptions`` so reports say what was assumed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .ops import OpCost, Precision, TransformerShape, totals, transformer_ops
from .profiles import Profile, all_profiles, get_profile

# Constants used only when neither the profile nor any other shipped profile gives a value.
# Each has a reason that goes into the report.
DEFAULTS = {
    "compute_eff": (0.25, "no fitted compute efficiency for any runtime of this unit"),
    "bandwidth_eff": (0.6, "no fitted bandwidth efficiency for any runtime of this unit"),
    "dispatch_us": (5.0, "no published per-operator overhead; 5 us per dispatched operator assumed"),
    "token_overhead_ms": (0.0, "no per-token overhead fitted for this runtime; 0 assumed"),
    "cold_start_factor": (2.0, "no published first-run factor for this runtime; 2x assumed"),
    "runtime_overhead_mb": (
        50.0,
        "runtime library + allocator slack assumed 50 MB (no published figure outside LLM runner apps)",
    ),
}


@dataclass
class DeviceParams:
    profile: str
    runtime: str
    precision: str
    unit: str
    threads: int | None
    peak_gflops: float
    compute_eff: float
    bandwidth_gbs: float
    bandwidth_eff: float
    dispatch_us: float
    token_overhead_ms: float
    cold_start_factor: float
    runtime_overhead_mb: float
    sources: dict = field(default_factory=dict)  # field -> source id(s)
    assumptions: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _others(profile: Profile) -> list[Profile]:
    try:
        return [p for p in all_profiles() if p.name != profile.name]
    except Exception:  # a broken user profile must not break estimates for a good one
        return []


def _median_over(profiles, getter):
    vals = [v for p in profiles for v in [getter(p)] if v is not None]
    return (statistics.median(vals), len(vals)) if vals else (None, 0)


def resolve_params(profile: Profile | str, runtime: str, precision: str) -> DeviceParams:
    """The numbers the estimator uses for (profile, runtime, precision), with every fallback stated."""
    from ..errors import UnknownNameError

    prof = get_profile(profile) if isinstance(profile, str) else profile
    if runtime not in prof.runtimes:
        raise UnknownNameError(f"runtime on profile {prof.name}", runtime, prof.runtimes)
    rt = prof.runtimes[runtime]
    assumptions, sources, others = [], {}, _others(prof)
    prec_key = precision if precision in rt.precisions else None
    if prec_key is None:
        prec_key = "fp32" if "fp32" in rt.precisions else next(iter(rt.precisions))
        assumptions.append(f"precision {precision} not listed for {runtime}; used the {prec_key} figures")
    entry = rt.precisions[prec_key]

    def rt_get(p, name, prec=None):
        r = p.runtimes.get(runtime)
        if r is None:
            return None
        if prec is not None:
            e = r.precisions.get(prec)
            return None if e is None else e[name].value
        return getattr(r, name).value

    def pick(name, own, prec_level=False):
        if own.value is not None:
            sources[name] = own.source
            return own.value
        if prec_level:
            v, n = _median_over(others, lambda p: rt_get(p, name, prec_key))
            if v is not None:
                assumptions.append(f"{name} unknown: median {v:.3g} of {runtime}/{prec_key} on {n} other profile(s)")
                sources[name] = "assumed"
                return v
            own_any = [e[name].value for e in rt.precisions.values() if e[name].value is not None]
            if own_any:
                v = statistics.median(own_any)
                assumptions.append(f"{name} unknown for {prec_key}: median {v:.3g} of this runtime's other precisions")
                sources[name] = "assumed"
                return v
            getter = lambda p: (
                statistics.median(vs)
                if (
                    vs := [
                        e[name].value
                        for r in p.runtimes.values()  # noqa: E731
                        if r.unit == rt.unit
                        for e in r.precisions.values()
                        if e[name].value is not None
                    ]
                )
                else None
            )
        else:
            v, n = _median_over(others, lambda p: rt_get(p, name))
            if v is not None:
                assumptions.append(f"{name} unknown: median {v:.3g} of {runtime} on {n} other profile(s)")
                sources[name] = "assumed"
                return v
            getter = lambda p: (
                statistics.median(vs)
                if (
                    vs := [
                        getattr(r, name).value
                        for r in p.runtimes.values()  # noqa: E731
                        if r.unit == rt.unit and getattr(r, name).value is not None
                    ]
                )
                else None
            )
        v, n = _median_over([prof, *others], getter)
        if v is not None and name not in ("token_overhead_ms",):
            assumptions.append(f"{name} unknown: median {v:.3g} over {rt.unit} runtimes of {n} profile(s)")
            sources[name] = "assumed"
            return v
        dv, why = DEFAULTS[name]
        assumptions.append(f"{name} unknown: {why} ({dv:g})")
        sources[name] = "assumed"
        return dv

    peak = entry["peak_gflops"].value
    if peak is None:
        cpu = [r for r in prof.runtimes.values() if r.unit == "cpu"]
        cand = [
            r.precisions[prec_key]["peak_gflops"].value
            for r in cpu
            if prec_key in r.precisions and r.precisions[prec_key]["peak_gflops"].value is not None
        ]
        if cand:
            peak = max(cand)
            assumptions.append(
                f"peak_gflops of {runtime} ({rt.unit}) unknown: assumed equal to this device's CPU "
                f"{prec_key} peak {peak:g} GFLOPS (a pessimistic bound for accelerators)"
            )
        else:
            peak = 100.0
            assumptions.append("peak_gflops unknown and no CPU figure on this profile: 100 GFLOPS assumed")
        sources["peak_gflops"] = "assumed"
    else:
        sources["peak_gflops"] = entry["peak_gflops"].source
    bw = prof.memory_bandwidth_gbs.value
    if bw is None:
        bw, n = _median_over(others, lambda p: p.memory_bandwidth_gbs.value)
        bw = bw or 30.0
        assumptions.append(f"memory_bandwidth_gbs unknown: median {bw:.3g} GB/s of {n} other profile(s)")
        sources["memory_bandwidth_gbs"] = "assumed"
    else:
        sources["memory_bandwidth_gbs"] = prof.memory_bandwidth_gbs.source
    return DeviceParams(
        profile=prof.name,
        runtime=runtime,
        precision=precision,
        unit=rt.unit,
        threads=rt.threads,
        peak_gflops=peak,
        compute_eff=pick("compute_eff", entry["compute_eff"], prec_level=True),
        bandwidth_gbs=bw,
        bandwidth_eff=pick("bandwidth_eff", rt.bandwidth_eff),
        dispatch_us=pick("dispatch_us", rt.dispatch_us),
        token_overhead_ms=pick("token_overhead_ms", rt.token_overhead_ms),
        cold_start_factor=pick("cold_start_factor", rt.cold_start_factor),
        runtime_overhead_mb=pick("runtime_overhead_mb", rt.runtime_overhead_mb),
        sources=sources,
        assumptions=assumptions,
    )


def op_time_s(op: OpCost, p: DeviceParams) -> tuple[float, float, float]:
    """(compute seconds, memory seconds, dispatch seconds) of one operator."""
    tc = op.flops / (p.peak_gflops * 1e9 * p.compute_eff)
    tm = op.bytes / (p.bandwidth_gbs * 1e9 * p.bandwidth_eff)
    return tc, tm, (p.dispatch_us * 1e-6 if op.dispatch else 0.0)


def estimate_forward(ops: list[OpCost], p: DeviceParams) -> dict:
    """Latency of one forward: sum over operators of the roofline time plus dispatch."""
    total = comp = mem = disp = 0.0
    n_compute_bound = 0
    for op in ops:
        tc, tm, td = op_time_s(op, p)
        total += max(tc, tm) + td
        comp += tc
        mem += tm
        disp += td
        n_compute_bound += tc > tm
    t = totals(ops)
    return {
        "latency_ms": total * 1e3,
        "compute_ms": comp * 1e3,
        "memory_ms": mem * 1e3,
        "dispatch_ms": disp * 1e3,
        "compute_bound_ops": n_compute_bound,
        "cold_start_ms": total * 1e3 * p.cold_start_factor,
        "flops": t["flops"],
        "bytes": t["weight_bytes"] + t["act_bytes"],
        "ops": t["dispatched_ops"],
    }


def scale_weights(ops: list[OpCost], factor: float) -> list[OpCost]:
    """Scale weight bytes so the graph's total matches the real artifact file."""
    import dataclasses

    return [dataclasses.replace(o, weight_bytes=o.weight_bytes * factor) for o in ops]


def estimate_lm(
    shape: TransformerShape,
    prec: Precision,
    p: DeviceParams,
    *,
    prompt: int,
    gen: int = 128,
    weight_factor: float = 1.0,
    kv_bytes: float | None = None,
) -> dict:
    """Prefill of ``prompt`` tokens, time to first token and decode tokens/s (at mid-generation context)."""
    pre_ops = scale_weights(transformer_ops(shape, prompt, 0, prec, logits="last", kv_bytes=kv_bytes), weight_factor)
    pre = estimate_forward(pre_ops, p)
    ctx = prompt + gen // 2
    dec_ops = scale_weights(transformer_ops(shape, 1, ctx, prec, logits="last", kv_bytes=kv_bytes), weight_factor)
    dec = estimate_forward(dec_ops, p)
    step_ms = dec["latency_ms"] + p.token_overhead_ms
    prefill_ms = pre["latency_ms"] + p.token_overhead_ms
    return {
        "prompt_tokens": prompt,
        "decode_context": ctx,
        "prefill_ms": prefill_ms,
        "prefill_tok_s": prompt / (prefill_ms / 1e3),
        "ttft_ms": prefill_ms,
        "decode_ms_per_token": step_ms,
        "decode_tok_s": 1e3 / step_ms,
        "decode_memory_ms": dec["memory_ms"],
        "cold_start_ttft_ms": prefill_ms * p.cold_start_factor,
        "prefill_flops": pre["flops"],
        "decode_bytes": dec["bytes"],
    }
