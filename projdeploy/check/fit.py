"""Fitting device efficiencies to published measurements, with a held-out rule that cannot flatter.

    python -c "from projdeploy.check.fit import split_of; print(split_of('mobilenet_v2'))"

Held-out rule: a published model id (the folder name under ``qai_hub_models/models/``) is used for
fitting only when the first byte of ``sha256(id)`` is even; odd ids are the held-out half, never
seen by any fit. The rule depends on the id alone, so the split is stable across data refreshes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def split_of(model_id: str) -> str:
    """``"fit"`` when the first byte of sha256(model_id) is even, else ``"holdout"``."""
    return "fit" if hashlib.sha256(model_id.encode()).digest()[0] % 2 == 0 else "holdout"


FIT_CLASSES = ("matmul", "attention", "conv", "dwconv", "elementwise")  # classes with FLOPs


@dataclass(frozen=True)
class ModelCost:
    """One reference model's operators as arrays: class index, FLOPs, weight / activation elements, count."""

    model_id: str
    cls: tuple  # class name per merged op
    flops: tuple
    weight_elems: tuple
    act_elems: tuple
    count: tuple
    dispatch: tuple  # 1 when the op counts toward the per-operator overhead
    live_peak_act_elems: float

    @classmethod
    def from_record(cls, model_id: str, rec: dict) -> ModelCost:
        ops = rec["ops"]
        return cls(
            model_id,
            tuple(o[0] for o in ops),
            tuple(float(o[2]) for o in ops),
            tuple(float(o[3]) for o in ops),
            tuple(float(o[4]) for o in ops),
            tuple(int(o[5]) for o in ops),
            tuple(0 if o[0] == "view" else 1 for o in ops),
            float(rec.get("live_peak_act_elems", 0.0)),
        )

    @property
    def weight_elems_total(self) -> float:
        return sum(w * n for w, n in zip(self.weight_elems, self.count))


@dataclass(frozen=True)
class Point:
    """A published measurement joined with the device figures it needs (peak, bandwidth at a precision)."""

    model_id: str
    split: str
    profile: str
    runtime: str
    family: str
    unit: str
    precision: str  # a key of ops.PRECISIONS
    latency_ms: float
    mem_mb: float | None
    peak_gflops: float  # resolved for the device (None peaks are excluded before)
    bandwidth_gbs: float
    peak_known: bool  # False: no published peak (a per-device scale is fitted)
    source: str


@dataclass
class FamilyFit:
    family: str
    class_eff: dict
    precision_eff: dict
    bandwidth_eff: float
    dispatch_us: float
    fixed_ms: float
    device_scale: dict = field(default_factory=dict)  # profile -> fitted factor on an unpublished peak
    rows: int = 0
    models: tuple = ()
    act_dram_share: float = 1.0  # share of activation bytes that reach DRAM when they fit on chip
    onchip_mb: float = 0.0  # activations of an operator larger than this go to DRAM whole


def dram_fraction(act_bytes, share: float, onchip_mb: float):
    """Share of an operator's activation bytes that reach DRAM: ``share`` while they fit in the on-chip
    memory (``onchip_mb``), rising smoothly to 1 for activations larger than it. Works on numpy arrays."""
    if onchip_mb <= 0:
        return share + 0.0 * act_bytes
    c2 = (onchip_mb * 2**20) ** 2
    return share + (1.0 - share) * act_bytes**2 / (act_bytes**2 + c2)


def predict_ms(mc: ModelCost, pt: Point, f: FamilyFit) -> float:
    """Latency of ``mc`` on ``pt``'s device under the family fit ``f`` (the estimator's roofline sum)."""
    from .ops import PRECISIONS

    prec = PRECISIONS[pt.precision]
    scale = f.device_scale.get(pt.profile, 1.0) if not pt.peak_known else 1.0
    peak = pt.peak_gflops * 1e9 * scale * f.precision_eff.get(pt.precision, 1.0)
    bw = pt.bandwidth_gbs * 1e9 * f.bandwidth_eff
    t = f.fixed_ms * 1e-3
    for c, fl, w, a, n, d in zip(mc.cls, mc.flops, mc.weight_elems, mc.act_elems, mc.count, mc.dispatch):
        tc = fl / (peak * f.class_eff.get(c, 1.0)) if fl else 0.0
        ab = a * prec.act_bytes
        tm = (w * prec.weight_bytes + dram_fraction(ab, f.act_dram_share, f.onchip_mb) * ab) / bw
        t += n * (max(tc, tm) + d * f.dispatch_us * 1e-6)
    return t * 1e3


def ratio(pred: float, meas: float) -> float:
    """max(r, 1/r) of a prediction against a measurement (1.0 = exact)."""
    r = pred / meas
    return max(r, 1.0 / r)


class _Batch:
    """All operators of all points as flat arrays, so one prediction of every point is a few numpy ops
    (the same formula as ``predict_ms``, which a test checks)."""

    def __init__(self, points, costs, classes, precs, devs):
        import numpy as np

        from .ops import PRECISIONS

        cols = {k: [] for k in ("pt", "cls", "flops", "wb", "ab", "n", "disp", "peak", "bw", "prec", "dev")}
        for i, p in enumerate(points):
            mc, prec = costs[p.model_id], PRECISIONS[p.precision]
            for c, fl, w, a, n, d in zip(mc.cls, mc.flops, mc.weight_elems, mc.act_elems, mc.count, mc.dispatch):
                cols["pt"].append(i)
                cols["cls"].append(classes.index(c) if c in classes else -1)
                cols["flops"].append(fl)
                cols["wb"].append(w * prec.weight_bytes)
                cols["ab"].append(a * prec.act_bytes)
                cols["n"].append(n)
                cols["disp"].append(d)
                cols["peak"].append(p.peak_gflops * 1e9)
                cols["bw"].append(p.bandwidth_gbs * 1e9)
                cols["prec"].append(precs.index(p.precision) if p.precision in precs else -1)
                cols["dev"].append(devs.index(p.profile) if (not p.peak_known and p.profile in devs) else -1)
        self.a = {k: np.array(v) for k, v in cols.items()}
        self.n_points, self.classes, self.precs, self.devs = len(points), classes, precs, devs

    def predict_ms(self, f: FamilyFit):
        import numpy as np

        a = self.a
        ce = np.append([f.class_eff[c] for c in self.classes], 1.0)[a["cls"]]
        pe = np.append([f.precision_eff[q] for q in self.precs], 1.0)[a["prec"]]
        ds = np.append([f.device_scale[d] for d in self.devs], 1.0)[a["dev"]]
        tc = a["flops"] / (a["peak"] * pe * ds * ce)
        tm = (a["wb"] + dram_fraction(a["ab"], f.act_dram_share, f.onchip_mb) * a["ab"]) / (a["bw"] * f.bandwidth_eff)
        t = a["n"] * (np.maximum(tc, tm) + a["disp"] * f.dispatch_us * 1e-6)
        return (np.bincount(a["pt"], weights=t, minlength=self.n_points) + f.fixed_ms * 1e-3) * 1e3


# (prior value, lower bound, upper bound) of each parameter kind; the fit is pulled toward the prior with
# weight PRIOR_WEIGHT per log unit, so parameters the data cannot separate stay at plain values.
PRIORS = {
    "c": (0.3, 1e-4, 1.5),  # compute efficiency of an operator class
    "p": (0.5, 1e-3, 4.0),  # precision factor on the reference peak
    "bw": (0.6, 0.05, 1.5),  # bandwidth efficiency
    "act": (0.5, 1e-3, 1.0),  # share of activation bytes that reach DRAM (rest stays on chip)
    "chip": (4.0, 0.25, 256.0),  # MiB of activations per operator that stay on chip
    "disp": (10.0, 1e-2, 5e3),  # dispatch us per operator
    "fixed": (0.1, 1e-4, 50.0),  # fixed ms per call
    "d": (1.0, 1e-3, 1e3),  # scale on a device's unpublished peak
}
PRIOR_WEIGHT = 0.1


def fit_family(family: str, points: list[Point], costs: dict, *, free_precisions: tuple) -> FamilyFit:
    """Least squares on log latency over ``points`` (all must be on the fit half: asserted).

    Free parameters: log compute efficiency per FLOP-bearing class present in the data, log factor per
    precision in ``free_precisions`` (the reference precision stays 1), log bandwidth efficiency, the
    share of activation bytes reaching DRAM, log dispatch us, log fixed ms, and a log scale per device
    whose peak is unpublished; each with a weak prior (``PRIORS``).
    """
    import numpy as np
    from scipy.optimize import least_squares

    bad = [p.model_id for p in points if split_of(p.model_id) != "fit"]
    if bad:
        raise ValueError(f"held-out model ids passed to fit_family: {sorted(set(bad))}")
    classes = [c for c in FIT_CLASSES if any(c in costs[p.model_id].cls for p in points)]
    precs = [q for q in free_precisions if any(p.precision == q for p in points)]
    devs = sorted({p.profile for p in points if not p.peak_known})
    names = [*(f"c:{c}" for c in classes), *(f"p:{q}" for q in precs), "bw", "act", "chip", "disp", "fixed"]
    names += [f"d:{d}" for d in devs]
    key = [n.split(":")[0] for n in names]
    prior = np.log([PRIORS[k][0] for k in key])

    def unpack(x) -> FamilyFit:
        v = dict(zip(names, np.exp(x)))
        return FamilyFit(
            family,
            {c: v[f"c:{c}"] for c in classes},
            {q: v[f"p:{q}"] for q in precs},
            v["bw"],
            v["disp"],
            v["fixed"],
            {d: v[f"d:{d}"] for d in devs},
            len(points),
            tuple(sorted({p.model_id for p in points})),
            v["act"],
            v["chip"],
        )

    batch = _Batch(points, costs, classes, precs, devs)
    meas = np.log([p.latency_ms for p in points])

    def resid(x):
        return np.concatenate([np.log(batch.predict_ms(unpack(x))) - meas, PRIOR_WEIGHT * (x - prior)])

    bounds = (np.log([PRIORS[k][1] for k in key]), np.log([PRIORS[k][2] for k in key]))
    res = least_squares(resid, prior.copy(), bounds=bounds, loss="cauchy", f_scale=0.25)
    return unpack(res.x)


def memory_terms(mc: ModelCost, precision: str) -> tuple[float, float]:
    """(weights MiB at the stored precision, live-tensor activation peak MiB at the activation precision)."""
    from .ops import PRECISIONS

    prec = PRECISIONS[precision]
    return mc.weight_elems_total * prec.weight_bytes / 2**20, mc.live_peak_act_elems * prec.act_bytes / 2**20


def fit_memory(points: list[Point], costs: dict) -> tuple[float, float]:
    """(runtime overhead MiB, activation arena factor) so that peak = weights + factor x live peak + overhead.

    Weights enter at their stored size (coefficient 1, not fitted); the two terms are a non-negative least
    squares fit on the published peak memory of fit-half rows only (asserted).
    """
    import numpy as np
    from scipy.optimize import nnls

    rows = [p for p in points if p.mem_mb is not None]
    if any(split_of(p.model_id) != "fit" for p in rows):
        raise ValueError("held-out model ids passed to fit_memory")
    a, b = [], []
    for p in rows:
        w, act = memory_terms(costs[p.model_id], p.precision)
        a.append([1.0, act])
        b.append(p.mem_mb - w)
    (overhead, factor), _ = nnls(np.array(a), np.array(b))
    return float(overhead), float(factor)


def predict_memory_mb(mc: ModelCost, pt: Point, overhead: float, factor: float) -> float:
    w, act = memory_terms(mc, pt.precision)
    return w + factor * act + overhead
