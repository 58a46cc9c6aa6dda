"""Estimator error on Qualcomm AI Hub's published per-model, per-device measurements, never flattered.

    .venv/bin/python bench/estimator.py [--out bench/results/estimator.md] [--write]

Data: bench/data/aihub_perf.csv (bench/aihub_perf.py; latency, compute unit and peak memory per model x
device x runtime x precision) joined with bench/data/model_ops.json (bench/model_costs.py; each model's
operators costed from its architecture by projdeploy's own ONNX costing). Device figures (peak per
precision of the compute unit, memory bandwidth) come from the shipped profiles; a peak that is only
known as FIT is treated as unpublished here, so no protocol sees a value fitted on its own test rows.

Protocols (median and worst of max(r, 1/r), r = estimate / published):
  * held-out models: each runtime family is fitted (compute efficiency per operator class, per-precision
    factor, bandwidth efficiency, dispatch, fixed overhead; a scale for a device without a published
    peak) on the model ids whose sha256 first byte is even; the error is on the odd ids only;
  * leave-one-device-out: refit without any row of one device, error on that device's held-out models
    (its peak is the published one or, where none is published, the estimator's fallback);
  * in-sample (fit rows, for reference only).
``--write`` stores the held-out-protocol fit in projdeploy/profiles/_runtimes.yaml (the values
``projdeploy check`` uses). Deterministic: no timing, no randomness.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from projdeploy.check.fit import (  # noqa: E402
    ModelCost,
    Point,
    fit_family,
    fit_memory,
    predict_memory_mb,
    predict_ms,
    ratio,
    split_of,
)

DATA = ROOT / "bench/data"
# AI Hub device name -> shipped profile
DEVICES = {
    "Samsung Galaxy S24": "galaxy-s24",
    "Samsung Galaxy S25": "galaxy-s25",
    "Snapdragon 7 Gen 4 QRD": "snapdragon-7-gen-4",
    "Snapdragon 8 Elite Gen 5 QRD": "snapdragon-8-elite-gen5",
    "Snapdragon X Elite CRD": "snapdragon-x-elite",
}
# (AI Hub runtime, primary compute unit) -> (profile runtime, family). The three NPU runtimes all run the
# graph through QNN on the HTP and publish near-equal latencies, so they share one family (more rows per
# fitted number); the CPU runtimes differ and keep their own.
RUNTIMES = {
    ("qnn_dlc", "NPU"): ("qnn-npu", "qnn-htp"),
    ("qnn_context_binary", "NPU"): ("qnn-npu", "qnn-htp"),
    ("tflite", "NPU"): ("litert-npu", "qnn-htp"),
    ("onnx", "NPU"): ("onnxruntime-qnn", "qnn-htp"),
    ("precompiled_qnn_onnx", "NPU"): ("onnxruntime-qnn", "qnn-htp"),
    ("tflite", "CPU"): ("litert-cpu", "litert-xnnpack"),
    ("onnx", "CPU"): ("onnxruntime-cpu", "ort-cpu"),
}
# AI Hub precision -> estimator precision, per unit (float runs fp16 on the HTP, fp32 on the CPU)
PRECISION = {
    "npu": {"float": "fp16", "w8a8": "int8", "w8a16": "w8a16"},
    "cpu": {"float": "fp32", "w8a8": "int8", "w8a16": "w8a16"},
}
REFERENCE = {"npu": "int8", "cpu": "fp32"}  # precision whose factor stays 1 (the unit's published peak)


def load_costs() -> dict:
    recs = json.loads((DATA / "model_ops.json").read_text())
    return {k: ModelCost.from_record(k, v) for k, v in recs.items()}, recs


def _device_figures(profile: str, runtime: str, precision: str) -> tuple[float, float, bool]:
    """(peak GFLOPS, bandwidth GB/s, peak published?) from the profile's compute unit, ignoring FIT peaks."""
    import statistics as st

    from projdeploy.check.profiles import all_profiles, get_profile

    prof = get_profile(profile)
    rt = prof.runtimes[runtime]
    unit = prof.units[rt.unit]
    key = precision if unit.peak(precision).value is not None else "int8"
    n = unit.peak(key)
    bw = unit.bandwidth_gbs.value or prof.memory_bandwidth_gbs.value
    if bw is None:
        bw = st.median(p.memory_bandwidth_gbs.value for p in all_profiles() if p.memory_bandwidth_gbs.value)
    if n.value is not None and "FIT" not in str(n.source):
        return n.value, bw, True
    others = [
        p.units[rt.unit].peak("int8").value
        for p in all_profiles()
        if p.name != profile and rt.unit in p.units and p.units[rt.unit].peak("int8").value
    ]
    return st.median(others), bw, False


def load_points(costs: dict, recs: dict) -> tuple[list[Point], dict]:
    """Every usable published row as a Point; ``skipped`` counts the rest by reason."""
    pts, skipped = [], {}

    def skip(why):
        skipped[why] = skipped.get(why, 0) + 1

    with (DATA / "aihub_perf.csv").open() as f:
        for r in csv.DictReader(f):
            if r["device"] not in DEVICES:
                skip("device without a profile")
                continue
            rk = RUNTIMES.get((r["runtime"], r["compute_unit"]))
            if rk is None:
                skip(f"runtime/unit {r['runtime']}/{r['compute_unit']} not modelled")
                continue
            runtime, family = rk
            unit = "npu" if r["compute_unit"] == "NPU" else "cpu"
            other = int(r["layers_cpu"] or 0) + int(r["layers_gpu"] or 0) if unit == "npu" else 0
            if other:
                skip("NPU row with layers on CPU/GPU (partial delegation: the fallback dominates, not modelled)")
                continue
            prec = PRECISION[unit].get(r["precision"])
            if r["model_id"] not in costs:
                skip("model not costed (architecture not built here)")
                continue
            comp = recs[r["model_id"]]["component"]
            if comp and r["component"] != comp:
                skip("other component of a multi-part model")
                continue
            if prec is None:
                skip(f"precision {r['precision']} not modelled")
                continue
            profile = DEVICES[r["device"]]
            peak, bw, known = _device_figures(profile, runtime, prec)
            mem = float(r["mem_max_mb"]) if r["mem_max_mb"] not in ("", None) else None
            pts.append(
                Point(
                    r["model_id"],
                    split_of(r["model_id"]),
                    profile,
                    runtime,
                    family,
                    unit,
                    prec,
                    float(r["latency_ms"]),
                    mem,
                    peak,
                    bw,
                    known,
                    r["source"],
                )
            )
    return pts, skipped


def fit_all(points: list[Point], costs: dict, exclude_device: str | None = None) -> dict:
    fits = {}
    for fam in sorted({p.family for p in points}):
        rows = [p for p in points if p.family == fam and p.split == "fit" and p.profile != exclude_device]
        if len(rows) < 8:
            continue
        unit = rows[0].unit
        free = tuple(q for q in PRECISION[unit].values() if q != REFERENCE[unit])
        fits[fam] = fit_family(fam, rows, costs, free_precisions=free)
    return fits


def errors(points: list[Point], costs: dict, fits: dict) -> list[tuple[Point, float, float]]:
    out = []
    for p in points:
        if p.family in fits:
            pred = predict_ms(costs[p.model_id], p, fits[p.family])
            out.append((p, pred, ratio(pred, p.latency_ms)))
    return out


def summarize(errs, key) -> dict:
    groups = {}
    for p, _pred, r in errs:
        groups.setdefault(key(p), []).append(r)
    return {k: {"n": len(v), "median_x": statistics.median(v), "worst_x": max(v)} for k, v in sorted(groups.items())}


def evaluate() -> dict:
    costs, recs = load_costs()
    points, skipped = load_points(costs, recs)
    fits = fit_all(points, costs)
    held = errors([p for p in points if p.split == "holdout"], costs, fits)
    insample = errors([p for p in points if p.split == "fit"], costs, fits)
    lodo = []
    for dev in sorted({p.profile for p in points}):
        f = fit_all(points, costs, exclude_device=dev)
        lodo += errors([p for p in points if p.split == "holdout" and p.profile == dev], costs, f)
    mem = {}
    for fam in fits:
        rows = [p for p in points if p.family == fam and p.split == "fit" and p.mem_mb]
        mem[fam] = fit_memory(rows, costs)
    mem_errs = [
        (p, pred, ratio(pred, p.mem_mb))
        for p in points
        if p.split == "holdout" and p.family in mem and p.mem_mb
        for pred in [predict_memory_mb(costs[p.model_id], p, *mem[p.family])]
    ]
    res = {
        "memory_fits": mem,
        "memory_held_by_family": summarize(mem_errs, lambda p: p.family),
        "fits": fits,
        "skipped": skipped,
        "n_points": len(points),
        "models": {s: sorted({p.model_id for p in points if p.split == s}) for s in ("fit", "holdout")},
        "held": held,
        "lodo": lodo,
        "insample": insample,
    }
    for name, errs in (("held", held), ("lodo", lodo), ("insample", insample)):
        res[name + "_by_unit"] = summarize(errs, lambda p: p.unit)
        res[name + "_by_device"] = summarize(errs, lambda p: (p.profile, p.unit))
        res[name + "_by_family"] = summarize(errs, lambda p: p.family)
    return res


NOTES = [
    "Known misses and why: the Whisper encoders (held out) are over-estimated about 4x on the NPU: AI Hub "
    "rewrites Whisper's attention for the HTP (split-head attention with per-head Conv2D projections, "
    "qai_hub_models/models/_shared/hf_whisper/model_adaptation.py), while this estimate costs the plain "
    "transformers graph and the fitted attention efficiency comes from the fit half's models, which run "
    "unmodified attention (SegFormer-B0 alone is 8x slower on the HTP than the fit predicts, in-sample). Rows where the NPU runs only part of the graph (layers on CPU/GPU) are left out: their "
    "latency is the CPU fallback's, which this model does not cost (see 'Rows not used'). CPU rows are few "
    "(AI Hub measures the CPU only where the NPU cannot run a model), so the CPU aim rests on a handful of "
    "rows. The Snapdragon 7 Gen 4 NPU has no published peak: its held-out rows use a fitted device scale, and "
    "leave-one-device-out falls back to the median peak of the other profiles (over-estimating a mid-range NPU).",
    "",
    "Model structure: one efficiency per operator class times one factor per precision, chosen by "
    "leave-one-model-out cross-validation inside the fit half (`bench/estimator.py --cv`; qnn-htp, 235 fit "
    "rows: median 1.50x, 90th percentile 3.04x); separate class efficiencies per precision scored 1.47x / 3.48x "
    "and were not adopted. "
    "The three NPU runtimes share one family because AI Hub publishes near-equal latencies for them; the "
    "CPU figures rest on ONNX Runtime CPU rows of one device (Snapdragon 7 Gen 4) running quantized QDQ graphs "
    "(no fp32 CPU row), so CPU fp32 estimates are extrapolated through the fitted int8/w8a16 factors.",
]


def _table(title: str, summ: dict, key_name: str) -> list[str]:
    out = [f"**{title}**", "", f"| {key_name} | rows | median x | worst x |", "|---|---|---|---|"]
    for k, v in summ.items():
        k = " / ".join(k) if isinstance(k, tuple) else k
        out.append(f"| {k} | {v['n']} | {v['median_x']:.2f} | {v['worst_x']:.2f} |")
    return out + [""]


def _worst(errs, n=8) -> list[str]:
    rows = sorted(errs, key=lambda e: -e[2])[:n]
    return [
        f"| {p.model_id} | {p.profile} | {p.runtime} | {p.precision} | {p.latency_ms:.3g} | {pred:.3g} | {r:.2f} |"
        for p, pred, r in rows
    ]


def markdown(res: dict) -> str:
    out = [
        "# Estimator vs published device measurements (Qualcomm AI Hub; bench/estimator.py)",
        "",
        "Command: `.venv/bin/python bench/estimator.py --out bench/results/estimator.md` (deterministic). "
        f"{res['n_points']} published rows (bench/data/aihub_perf.csv) on {len(DEVICES)} devices; "
        f"fit models ({len(res['models']['fit'])}): {', '.join(res['models']['fit'])}; "
        f"held-out models ({len(res['models']['holdout'])}): {', '.join(res['models']['holdout'])}. "
        "Error = max(estimate/published, published/estimate).",
        "",
    ]
    out += _table("Held-out models (never used for fitting), per compute unit", res["held_by_unit"], "unit")
    out += ["**Aims** (held-out half: median <= 1.5x, worst <= 3x, per unit)", ""]
    for unit, v in res["held_by_unit"].items():
        ok = lambda b: "met" if b else "MISSED"  # noqa: E731
        out.append(
            f"- {unit}: median {v['median_x']:.2f}x {ok(v['median_x'] <= 1.5)}, worst {v['worst_x']:.2f}x "
            f"{ok(v['worst_x'] <= 3.0)} ({v['n']} rows)"
        )
    out += ["", *NOTES, ""]
    out += _table("Held-out models, per device", res["held_by_device"], "device / unit")
    out += _table("Held-out models, per runtime family", res["held_by_family"], "family")
    out += _table("Leave-one-device-out (held-out models on the left-out device)", res["lodo_by_device"], "device")
    out += _table("In-sample (fit rows; optimistic, for reference)", res["insample_by_unit"], "unit")
    out += [
        "**Worst held-out rows**",
        "",
        "| model | device | runtime | precision | published ms | estimate ms | x |",
        "|---|---|---|---|---|---|---|",
        *_worst(res["held"]),
        "",
        "**Fitted runtime families** (compute efficiency per operator class; factor per precision on the unit's "
        "published peak; bandwidth efficiency; dispatch us per operator; fixed ms per call)",
        "",
        "| family | rows | class eff | precision factor | bw eff | act DRAM share | on-chip MiB | dispatch us | fixed ms | "
        "device scale |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in res["fits"].items():
        ce = ", ".join(f"{k} {v:.3g}" for k, v in f.class_eff.items())
        pe = ", ".join(f"{k} {v:.3g}" for k, v in f.precision_eff.items())
        ds = ", ".join(f"{k} {v:.3g}" for k, v in f.device_scale.items()) or "-"
        out.append(
            f"| {name} | {f.rows} | {ce} | {pe} | {f.bandwidth_eff:.3g} | {f.act_dram_share:.3g} | {f.onchip_mb:.3g} | {f.dispatch_us:.3g} | "
            f"{f.fixed_ms:.3g} | {ds} |"
        )
    out += [
        "",
        "**Peak memory, held-out models** (estimate = weights at the stored precision + arena factor x live-tensor "
        "activation peak + runtime overhead; published = AI Hub's peak-memory range maximum)",
        "",
        "| family | rows | median x | worst x | overhead MiB | arena factor |",
        "|---|---|---|---|---|---|",
    ]
    for fam, v in res["memory_held_by_family"].items():
        o, fa = res["memory_fits"][fam]
        out.append(f"| {fam} | {v['n']} | {v['median_x']:.2f} | {v['worst_x']:.2f} | {o:.1f} | {fa:.2f} |")
    out += ["", "Rows not used: " + "; ".join(f"{k}: {v}" for k, v in sorted(res["skipped"].items())), ""]
    return "\n".join(out)


def write_families(res: dict, path: Path = ROOT / "projdeploy/profiles/_runtimes.yaml") -> None:
    """Store the held-out-protocol fits as the shipped runtime families (keeps families without data)."""
    import yaml

    data = yaml.safe_load(path.read_text())
    for name, f in res["fits"].items():
        fam = data["families"].setdefault(name, {"unit": "npu"})

        def num(v, note=""):
            return {"value": float(f"{v:.4g}"), "source": "FIT", "note": note}

        fam["class_eff"] = {k: num(v) for k, v in f.class_eff.items()}
        ref = REFERENCE[data["families"][name]["unit"]]
        fam["precision_eff"] = {ref: {"value": 1.0, "source": "FIT", "note": "reference: the unit's published peak"}}
        fam["precision_eff"].update({k: num(v, f"factor on the unit's {ref} peak") for k, v in f.precision_eff.items()})
        fam["bandwidth_eff"] = num(f.bandwidth_eff)
        fam["act_dram_share"] = num(f.act_dram_share, "share of activation bytes that reach DRAM")
        fam["onchip_mb"] = num(f.onchip_mb, "an operator's activations beyond this reach DRAM whole")
        fam["dispatch_us"] = num(f.dispatch_us)
        fam["fixed_ms"] = num(f.fixed_ms)
        if name in res["memory_fits"]:
            o, fa = res["memory_fits"][name]
            fam["runtime_overhead_mb"] = num(o, "fitted on AI Hub peak-memory maxima (weights enter at stored size)")
            fam["act_arena_factor"] = num(fa, "x live-tensor activation peak")
        fam["fit"] = {
            "rows": f.rows,
            "models": list(f.models),
            "device_scale": {k: float(f"{v:.4g}") for k, v in f.device_scale.items()},
        }
    head = (
        "# Runtime families: efficiencies fitted on published measurements (written by bench/estimator.py --write).\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(head + yaml.safe_dump(data, sort_keys=False, width=120))
    tmp.replace(path)


def cross_validate(family: str = "qnn-htp") -> dict:
    """Leave-one-model-out inside the fit half: the criterion the model structure was chosen by.

    ``shared``: class efficiencies x precision factors (shipped); ``per_precision``: class efficiencies
    fitted separately for each precision. Held-out models are not touched."""
    costs, recs = load_costs()
    pts = [p for p in load_points(costs, recs)[0] if p.family == family and p.split == "fit"]
    unit = pts[0].unit
    free = tuple(q for q in PRECISION[unit].values() if q != REFERENCE[unit])
    out = {"shared": [], "per_precision": []}
    for m in sorted({p.model_id for p in pts}):
        train, test = [p for p in pts if p.model_id != m], [p for p in pts if p.model_id == m]
        f = fit_family(family, train, costs, free_precisions=free)
        out["shared"] += [ratio(predict_ms(costs[p.model_id], p, f), p.latency_ms) for p in test]
        for q in sorted({p.precision for p in test}):
            fq = fit_family(family, [p for p in train if p.precision == q], costs, free_precisions=())
            out["per_precision"] += [
                ratio(predict_ms(costs[p.model_id], p, fq), p.latency_ms) for p in test if p.precision == q
            ]
    return {
        k: {"n": len(v), "median_x": statistics.median(v), "p90_x": sorted(v)[int(0.9 * len(v))]}
        for k, v in out.items()
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--write", action="store_true", help="store the fit in projdeploy/profiles/_runtimes.yaml")
    ap.add_argument("--cv", action="store_true", help="only the fit-half model-structure cross-validation")
    a = ap.parse_args(argv)
    if a.cv:
        for k, v in cross_validate().items():
            print(f"{k}: {v['n']} rows, median {v['median_x']:.2f}x, 90th percentile {v['p90_x']:.2f}x")
        return
    res = evaluate()
    md = markdown(res)
    print(md)
    if a.out:
        Path(a.out).write_text(md)
    if a.write:
        write_families(res)


if __name__ == "__main__":
    main()
