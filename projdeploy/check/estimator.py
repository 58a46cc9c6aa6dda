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
    family: str | None = None  # runtime family whose fitted efficiencies apply (profiles/_runtimes.yaml)
    class_eff: dict = field(default_factory=dict)  # op class -> factor on compute_eff (missing: 1.0)
    fixed_ms: float = 0.0  # per-call overhead of the runtime (fitted)
    act_arena_factor: float = 1.0  # activation arena = factor x live-tensor peak (fitted)
    act_dram_share: float = 1.0  # share of activation bytes that reach DRAM (fitted; the rest stays on chip)
    onchip_mb: float = 0.0  # an operator's activations beyond this reach DRAM whole (fitted; 0 = not modelled)

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


def _unit_median(profiles, unit: str, value_of) -> tuple[float | None, int]:
    """Median over ``profiles`` of each profile's median of ``value_of(runtime)`` over its ``unit`` runtimes."""

    def per_profile(p):
        vs = [v for r in p.runtimes.values() if r.unit == unit for v in value_of(r) if v is not None]
        return statistics.median(vs) if vs else None

    return _median_over(profiles, per_profile)


@dataclass
class _Resolver:
    """The fallback chain of ``resolve_params`` for one (profile, runtime, precision); records every step."""

    prof: Profile
    runtime: str
    rt: object
    prec_key: str
    fam: object
    others: list
    assumptions: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)

    def _assume(self, name: str, value: float, why: str) -> float:
        self.assumptions.append(why)
        self.sources[name] = "assumed"
        return value

    def _rt_value(self, p: Profile, name: str, prec: str | None = None):
        r = p.runtimes.get(self.runtime)
        if r is None:
            return None
        if prec is not None:
            e = r.precisions.get(prec)
            return None if e is None else e[name].value
        return getattr(r, name).value

    def pick(self, name: str, own, prec_level: bool = False) -> float:
        """own value -> runtime family (fitted) -> other profiles' same runtime -> this runtime's other
        precisions -> the unit's runtimes on all profiles -> ``DEFAULTS``."""
        if own.value is not None:
            self.sources[name] = own.source
            return own.value
        if self.fam is not None:
            fv = self.fam.precision_eff.get(self.prec_key) if prec_level else self.fam.scalars.get(name)
            if fv is not None and fv.value is not None:
                self.sources[name] = fv.source
                return fv.value
            if prec_level:
                why = f"no fitted {self.prec_key} factor in runtime family {self.fam.name}: 1.0 assumed"
                return self._assume(name, 1.0, why)
        v = self._pick_others(name, prec_level)
        if v is not None:
            return v
        if prec_level:
            value_of = lambda r: [e[name].value for e in r.precisions.values()]  # noqa: E731
        else:
            value_of = lambda r: [getattr(r, name).value]  # noqa: E731
        v, n = _unit_median([self.prof, *self.others], self.rt.unit, value_of)
        if v is not None and name != "token_overhead_ms":
            return self._assume(
                name, v, f"{name} unknown: median {v:.3g} over {self.rt.unit} runtimes of {n} profile(s)"
            )
        dv, why = DEFAULTS[name]
        return self._assume(name, dv, f"{name} unknown: {why} ({dv:g})")

    def _pick_others(self, name: str, prec_level: bool) -> float | None:
        rtn, pk = self.runtime, self.prec_key
        if prec_level:
            v, n = _median_over(self.others, lambda p: self._rt_value(p, name, pk))
            if v is not None:
                return self._assume(name, v, f"{name} unknown: median {v:.3g} of {rtn}/{pk} on {n} other profile(s)")
            own_any = [e[name].value for e in self.rt.precisions.values() if e[name].value is not None]
            if own_any:
                v = statistics.median(own_any)
                why = f"{name} unknown for {pk}: median {v:.3g} of this runtime's other precisions"
                return self._assume(name, v, why)
            return None
        v, n = _median_over(self.others, lambda p: self._rt_value(p, name))
        if v is not None:
            return self._assume(name, v, f"{name} unknown: median {v:.3g} of {rtn} on {n} other profile(s)")
        return None

    def peak(self, entry: dict) -> float:
        peak, src = _unit_peak(self.prof, self.rt, entry, self.prec_key, self.assumptions)
        if peak is not None:
            self.sources["peak_gflops"] = src
            return peak
        pk = self.prec_key
        cand = [
            r.precisions[pk]["peak_gflops"].value
            for r in self.prof.runtimes.values()
            if r.unit == "cpu" and pk in r.precisions and r.precisions[pk]["peak_gflops"].value is not None
        ]
        if cand:
            why = (
                f"peak_gflops of {self.runtime} ({self.rt.unit}) unknown: assumed equal to this device's CPU "
                f"{pk} peak {max(cand):g} GFLOPS (a pessimistic bound for accelerators)"
            )
            return self._assume("peak_gflops", max(cand), why)
        return self._assume(
            "peak_gflops", 100.0, "peak_gflops unknown and no CPU figure on this profile: 100 GFLOPS assumed"
        )

    def bandwidth(self) -> float:
        unit = self.prof.units.get(self.rt.unit)
        if unit is not None and unit.bandwidth_gbs.value is not None:
            self.sources["memory_bandwidth_gbs"] = unit.bandwidth_gbs.source
            return unit.bandwidth_gbs.value
        if self.prof.memory_bandwidth_gbs.value is not None:
            self.sources["memory_bandwidth_gbs"] = self.prof.memory_bandwidth_gbs.source
            return self.prof.memory_bandwidth_gbs.value
        bw, n = _median_over(self.others, lambda p: p.memory_bandwidth_gbs.value)
        bw = bw or 30.0
        why = f"memory_bandwidth_gbs unknown: median {bw:.3g} GB/s of {n} other profile(s)"
        return self._assume("memory_bandwidth_gbs", bw, why)


def resolve_params(profile: Profile | str, runtime: str, precision: str) -> DeviceParams:
    """The numbers the estimator uses for (profile, runtime, precision), with every fallback stated."""
    from ..errors import UnknownNameError
    from .ops import PRECISIONS

    prof = get_profile(profile) if isinstance(profile, str) else profile
    precision = PRECISIONS[precision].compute if precision in PRECISIONS else precision
    if runtime not in prof.runtimes:
        raise UnknownNameError(f"runtime on profile {prof.name}", runtime, prof.runtimes)
    rt = prof.runtimes[runtime]
    assumptions = []
    prec_key = precision if precision in rt.precisions else None
    if prec_key is None:
        prec_key = "fp32" if "fp32" in rt.precisions else next(iter(rt.precisions))
        assumptions.append(f"precision {precision} not listed for {runtime}; used the {prec_key} figures")
    fam = _fitted_family(rt.family, assumptions) if rt.family else None
    r = _Resolver(prof, runtime, rt, prec_key, fam, _others(prof), assumptions)
    peak, bw = r.peak(rt.precisions[prec_key]), r.bandwidth()
    class_eff = {}
    if fam is not None:
        class_eff = {k: v.value for k, v in fam.class_eff.items() if v.value is not None}
        r.sources["class_eff"] = ",".join(sorted({v.source for v in fam.class_eff.values() if v.source}))
    return DeviceParams(
        profile=prof.name,
        runtime=runtime,
        precision=precision,
        unit=rt.unit,
        threads=rt.threads,
        peak_gflops=peak,
        compute_eff=r.pick("compute_eff", rt.precisions[prec_key]["compute_eff"], prec_level=True),
        bandwidth_gbs=bw,
        bandwidth_eff=r.pick("bandwidth_eff", rt.bandwidth_eff),
        dispatch_us=r.pick("dispatch_us", rt.dispatch_us),
        token_overhead_ms=r.pick("token_overhead_ms", rt.token_overhead_ms),
        cold_start_factor=r.pick("cold_start_factor", rt.cold_start_factor),
        runtime_overhead_mb=r.pick("runtime_overhead_mb", rt.runtime_overhead_mb),
        sources=r.sources,
        assumptions=r.assumptions,
        family=rt.family,
        class_eff=class_eff,
        fixed_ms=_fam_value(fam, "fixed_ms", 0.0),
        act_arena_factor=_fam_value(fam, "act_arena_factor", 1.0),
        act_dram_share=_fam_value(fam, "act_dram_share", 1.0),
        onchip_mb=_fam_value(fam, "onchip_mb", 0.0),
    )


def _fitted_family(name: str, assumptions: list):
    """The runtime family, or (when it has no fitted values) the fitted family of the same compute unit."""
    from .families import families, get_family

    fam = get_family(name)
    if fam.class_eff or fam.unit == "cpu":  # CPU runtimes differ too much to borrow another's fit
        return fam
    donors = sorted(f.name for f in families().values() if f.unit == fam.unit and f.class_eff)
    if not donors:
        return fam
    assumptions.append(
        f"runtime family {name} has no fitted values (no published measurements used): the {fam.unit} "
        f"efficiencies fitted for {donors[0]} are assumed"
    )
    return get_family(donors[0])


def _fam_value(fam, name: str, default: float) -> float:
    if fam is None:
        return default
    v = fam.get(name).value
    return default if v is None else v


def _unit_peak(prof: Profile, rt, entry: dict, prec_key: str, assumptions: list) -> tuple[float | None, str | None]:
    """Peak of (runtime, precision): the runtime's own figure, else its compute unit's, else (an accelerator
    whose figure for this precision is not published) the unit's int8 peak, which the runtime family's
    fitted precision factor then scales. None: no figure at all."""
    own = entry.get("peak_gflops")
    if own is not None and own.value is not None:
        return own.value, own.source
    unit = prof.units.get(rt.unit)
    if unit is None:
        return None, None
    n = unit.peak(prec_key)
    if n.value is not None:
        return n.value, n.source
    base = unit.peak("int8")
    if rt.family and rt.unit != "cpu" and base.value is not None:
        assumptions.append(
            f"{prec_key} peak of the {unit.name} is not published: its int8 peak {base.value:g} GFLOPS is used and "
            f"the runtime family {rt.family}'s fitted {prec_key} factor scales it"
        )
        return base.value, base.source
    if rt.unit != "cpu":
        key = prec_key if rt.family is None else "int8"
        nums = [u.peak(key) for o in _others(prof) for u in [o.units.get(rt.unit)] if u is not None]
        vals = [n.value for n in nums if n.value is not None and "FIT" not in str(n.source)]
        if vals:
            v = statistics.median(vals)
            assumptions.append(
                f"{unit.name} {key} peak not published: median {v:g} GFLOPS of the {rt.unit} of "
                f"{len(vals)} other profile(s)"
            )
            return v, "assumed"
    return None, None


def op_time_s(op: OpCost, p: DeviceParams) -> tuple[float, float, float]:
    """(compute seconds, memory seconds, dispatch seconds) of one operator."""
    tc = op.flops / (p.peak_gflops * 1e9 * p.compute_eff * p.class_eff.get(op.cls, 1.0))
    from .fit import dram_fraction

    act = dram_fraction(op.act_bytes, p.act_dram_share, p.onchip_mb) * op.act_bytes
    tm = (op.weight_bytes + act) / (p.bandwidth_gbs * 1e9 * p.bandwidth_eff)
    return tc, tm, (p.dispatch_us * 1e-6 if op.dispatch else 0.0)


def estimate_forward(ops: list[OpCost], p: DeviceParams) -> dict:
    """Latency of one forward: sum over operators of the roofline time plus dispatch, plus the fixed per-call time.

    ``unit_flops_fraction``: share of the FLOPs in operators the estimator could cost, i.e. that the
    runtime's compute unit is assumed to run; uncosted operator types are assumed to fall back (CPU).
    """
    total = comp = mem = disp = 0.0
    n_compute_bound = 0
    by_class: dict = {}
    for op in ops:
        tc, tm, td = op_time_s(op, p)
        total += max(tc, tm) + td
        comp += tc
        mem += tm
        disp += td
        n_compute_bound += tc > tm
        by_class[op.cls] = by_class.get(op.cls, 0.0) + (max(tc, tm) + td) * 1e3
    total += p.fixed_ms * 1e-3
    t = totals(ops)
    uncosted = sorted({o.op_type for o in ops if o.cls == "uncosted"})
    on_unit = sum(o.flops for o in ops if o.cls != "uncosted")
    return {
        "latency_ms": total * 1e3,
        "unit": p.unit,
        "unit_flops_fraction": on_unit / t["flops"] if t["flops"] else 1.0,
        "by_class_ms": by_class,
        "fixed_ms": p.fixed_ms,
        "uncosted_op_types": uncosted,
        "compute_ms": comp * 1e3,
        "memory_ms": mem * 1e3,
        "dispatch_ms": disp * 1e3,
        "compute_bound_ops": n_compute_bound,
        "cold_start_ms": total * 1e3 * p.cold_start_factor,
        "flops": t["flops"],
        "bytes": t["weight_bytes"] + t["act_bytes"],
        "ops": t["dispatched_ops"],
    }


PLANNED_PRECISIONS = ("fp16", "int8", "w8a16")


def planned_estimates(profile: Profile, ops: list[OpCost], current_runtime: str) -> list[dict]:
    """Estimates for accelerator runtimes the user may plan (Core ML, QNN/NPU) that cannot run here: the
    float graph re-costed at each listed target precision (weights and activations re-sized), labelled."""
    from .ops import PRECISIONS, retarget

    out = []
    for name, rt in profile.runtimes.items():
        if rt.unit == "cpu" or name == current_runtime:
            continue
        for prec in (q for q in rt.precisions if q in PLANNED_PRECISIONS):
            p = resolve_params(profile, name, prec)
            e = estimate_forward(retarget(ops, PRECISIONS[prec]), p)
            out.append(
                {
                    "kind": "planned-estimate",
                    "runtime": name,
                    "unit": rt.unit,
                    "family": rt.family,
                    "precision": prec,
                    "latency_ms": e["latency_ms"],
                    "unit_flops_fraction": e["unit_flops_fraction"],
                    "note": f"PLANNED: this graph re-costed at {prec} for {name} ({rt.unit}); not exported or run here",
                    "assumptions": list(p.assumptions),
                }
            )
    return out


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
