"""Estimator error on published on-device LLM measurements (hardware.md section 3 rows).

    .venv/bin/python bench/estimator_llm.py [--out bench/results/estimator_llm.md]

Each published row is described analytically (layer shapes from the models' public HF configs,
weight file size from the row's source or from the quantization's bits/weight) and run through
the same code path as ``projdeploy check``: ``resolve_params`` -> ``estimate_lm``.
Three protocols are reported:
  * prior: the profiles with every efficiency blanked (the estimator's stated fallbacks only);
  * in-sample: the shipped profile values, which were fitted to these same rows (optimistic);
  * leave-one-model-out (LOMO): for each row, the efficiencies are refitted without that row.
Deterministic (no timing, no randomness): the numbers depend only on the data below.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from projdeploy.check.estimator import estimate_lm, resolve_params  # noqa: E402
from projdeploy.check.ops import PRECISIONS, TransformerShape  # noqa: E402

HF = "https://huggingface.co/{}/blob/main/config.json"
# name -> (shape, params source). vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, tied
MODELS = {
    "llama-3.2-1b": (TransformerShape(128256, 2048, 8192, 16, 32, 8, 64, True), HF.format("meta-llama/Llama-3.2-1B")),
    "llama-3.2-3b": (TransformerShape(128256, 3072, 8192, 28, 24, 8, 128, True), HF.format("meta-llama/Llama-3.2-3B")),
    "llama-3-8b": (
        TransformerShape(128256, 4096, 14336, 32, 32, 8, 128, False),
        HF.format("meta-llama/Meta-Llama-3-8B"),
    ),
    "qwen2.5-0.5b": (
        TransformerShape(151936, 896, 4864, 24, 14, 2, 64, True, qkv_bias=True),
        HF.format("Qwen/Qwen2.5-0.5B"),
    ),
    "qwen2.5-1.5b": (
        TransformerShape(151936, 1536, 8960, 28, 12, 2, 128, True, qkv_bias=True),
        HF.format("Qwen/Qwen2.5-1.5B"),
    ),
    "deepseek-r1-qwen-1.5b": (
        TransformerShape(151936, 1536, 8960, 28, 12, 2, 128, False, qkv_bias=True),
        HF.format("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    ),
    "gemma-3-1b": (TransformerShape(262144, 1152, 6912, 26, 4, 1, 256, True), HF.format("google/gemma-3-1b-it")),
    "tinyllama-1.1b": (
        TransformerShape(32000, 2048, 5632, 22, 32, 4, 64, False),
        HF.format("TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
    ),
    "qwen2-0.5b": (
        TransformerShape(151936, 896, 4864, 24, 14, 2, 64, True, qkv_bias=True),
        HF.format("Qwen/Qwen2-0.5B"),
    ),
    "qwen2-7b": (
        TransformerShape(152064, 3584, 18944, 28, 28, 4, 128, False, qkv_bias=True),
        HF.format("Qwen/Qwen2-7B"),
    ),
}
# GGUF bits per weight (llama.cpp quantization table): q8_0 8.5, Q4_K_M ~4.85 (mixed).
BPW = {"q8_0": 8.5, "q4_k_m": 4.85, "int4_g128": 4.125}


@dataclasses.dataclass(frozen=True)
class Point:
    id: str
    profile: str
    runtime: str
    model: str
    precision: str
    file_mb: float | None  # MiB as published; None -> params x bits/weight
    bpw: float | None
    prompt: int
    decode: float | None  # tok/s
    prefill: float | None  # tok/s
    rss_mb: float | None
    source: str
    note: str = ""


MiB = 1024**2
P = Point
POINTS = [
    P(
        "et-1b-bf16",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3.2-1b",
        "bf16",
        2358,
        None,
        64,
        19.2,
        60.3,
        3185,
        "S37",
        "OnePlus 12 (stock 8 Gen 3)",
    ),
    P(
        "et-1b-spinquant",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3.2-1b",
        "int4",
        1083,
        None,
        64,
        50.2,
        260.5,
        1921,
        "S37",
        "OnePlus 12",
    ),
    P(
        "et-1b-qatlora",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3.2-1b",
        "int4",
        1127,
        None,
        64,
        45.8,
        252.0,
        2255,
        "S37",
        "OnePlus 12",
    ),
    P(
        "et-3b-bf16",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3.2-3b",
        "bf16",
        6129,
        None,
        64,
        7.6,
        21.2,
        7419,
        "S37",
        "OnePlus 12",
    ),
    P(
        "et-3b-spinquant",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3.2-3b",
        "int4",
        2435,
        None,
        64,
        19.7,
        89.7,
        3726,
        "S37",
        "OnePlus 12",
    ),
    P(
        "et-8b-4bit",
        "galaxy-s24",
        "executorch-xnnpack",
        "llama-3-8b",
        "int4",
        None,
        BPW["int4_g128"],
        64,
        10.91,
        None,
        None,
        "S37",
        "Galaxy S24; 4-bit g128, size from bits/weight",
    ),
    P(
        "litert-qwen0.5b",
        "galaxy-s24",
        "litert-cpu",
        "qwen2.5-0.5b",
        "int8-dynamic",
        521 * 1e6 / MiB,
        None,
        1024,
        29.97,
        250.73,
        1363 * 1e6 / MiB,
        "S45",
        "S24 Ultra, 4 threads; prompt length assumed 1024 (kv 1280)",
    ),
    P(
        "litert-qwen1.5b",
        "galaxy-s24",
        "litert-cpu",
        "qwen2.5-1.5b",
        "int8-dynamic",
        None,
        8.25,
        1024,
        23.0,
        106.0,
        1820 * 1e6 / MiB,
        "S46",
        "S24 Ultra; size from bits/weight; prompt assumed 1024",
    ),
    P(
        "litert-dsqwen1.5b",
        "galaxy-s24",
        "litert-cpu",
        "deepseek-r1-qwen-1.5b",
        "int8-dynamic",
        1831 * 1e6 / MiB,
        None,
        1024,
        26.35,
        166.5,
        2221 * 1e6 / MiB,
        "S47",
        "S24 Ultra; prompt assumed 1024",
    ),
    P(
        "litertlm-gemma1b",
        "galaxy-s24",
        "litertlm-cpu",
        "gemma-3-1b",
        "int4",
        554 * 1e6 / MiB,
        None,
        1024,
        55.9,
        379.7,
        None,
        "S48",
        "S24 Ultra, 1024 prefill / 256 decode, perf lock",
    ),
    P(
        "litert-gpu-dsqwen1.5b",
        "galaxy-s24",
        "litert-gpu",
        "deepseek-r1-qwen-1.5b",
        "int8-dynamic",
        1831 * 1e6 / MiB,
        None,
        1024,
        26.98,
        None,
        None,
        "S47",
        "GPU prefill not evaluated: Adreno peak unpublished",
    ),
    P(
        "litertlm-gpu-gemma1b",
        "galaxy-s24",
        "litertlm-gpu",
        "gemma-3-1b",
        "int4",
        554 * 1e6 / MiB,
        None,
        1024,
        52.5,
        None,
        None,
        "S48",
        "GPU prefill not evaluated",
    ),
    P(
        "pi5-tinyllama-q8",
        "raspberry-pi-5",
        "llamacpp-cpu",
        "tinyllama-1.1b",
        "int8-dynamic",
        1.17e9 / MiB,
        None,
        512,
        9.0,
        35.0,
        None,
        "S51",
        "llama.cpp row; file size 1.17 GB as in hardware.md; prompt length assumed 512",
    ),
    P(
        "pi5-ollama-3b",
        "raspberry-pi-5",
        "llamacpp-cpu",
        "llama-3.2-3b",
        "int4",
        None,
        BPW["q4_k_m"],
        512,
        4.88,
        None,
        None,
        "S50",
        "Ollama default Q4_K_M assumed",
    ),
    P(
        "pi5-ollama-8b",
        "raspberry-pi-5",
        "llamacpp-cpu",
        "llama-3-8b",
        "int4",
        None,
        BPW["q4_k_m"],
        512,
        2.17,
        None,
        None,
        "S50",
        "llama3.1:8b (same shape as Llama 3 8B), Q4_K_M assumed",
    ),
    P(
        "x86-igpu-qwen2-0.5b",
        "x86-laptop",
        "igpu-llm",
        "qwen2-0.5b",
        "int8-dynamic",
        None,
        BPW["q8_0"],
        512,
        65.0,
        None,
        None,
        "S52",
        "Core Ultra 9 185H (same die), IPEX-LLM Q8_0",
    ),
    P(
        "x86-igpu-qwen2-7b",
        "x86-laptop",
        "igpu-llm",
        "qwen2-7b",
        "int4",
        None,
        BPW["q4_k_m"],
        512,
        15.5,
        None,
        None,
        "S52",
        "IPEX-LLM Q4_K_M",
    ),
    P(
        "x86-igpu-llama3-8b",
        "x86-laptop",
        "igpu-llm",
        "llama-3-8b",
        "int4",
        None,
        4.5,
        512,
        12.0,
        None,
        None,
        "S52",
        "OpenVINO INT4 (4.5 bits/weight assumed)",
    ),
]
NOT_USED = {
    "Pixel 8 Pro MLC-LLM RedPajama-3B (S42)": "the only point for its runtime (MLC GPU); nothing to fit or hold out",
    "S24 EfficientNetV2-S / SSDLite (S36), Pi 5 MobileNetV2 (S49), whisper.cpp (S23)": "CNN / encoder-decoder models "
    "have no analytic description here (no torchvision in the environment); left for the ONNX-graph path",
    "Core Ultra NPU Phi-3-mini (S52)": "NPU peak unknown; a single point",
}
EFF_GRID = [round(0.01 * i, 2) for i in range(2, 101)]
OVH_GRID = [0.5 * i for i in range(0, 81)]  # ms


def weight_factor(pt: Point) -> float:
    shape = MODELS[pt.model][0]
    prec = PRECISIONS[pt.precision]
    n = shape.num_parameters()
    size = pt.file_mb * MiB if pt.file_mb is not None else n * pt.bpw / 8
    return size / (n * prec.weight_bytes)


def predict(pt: Point, params) -> dict:
    shape = MODELS[pt.model][0]
    return estimate_lm(
        shape, PRECISIONS[pt.precision], params, prompt=pt.prompt, gen=128, weight_factor=weight_factor(pt)
    )


def base_params(pt: Point, blank: bool):
    """The profile's parameters; ``blank`` replaces fitted efficiencies by the estimator's fallbacks."""
    p = resolve_params(pt.profile, pt.runtime, PRECISIONS[pt.precision].compute)
    if blank:
        p = dataclasses.replace(p, compute_eff=0.25, bandwidth_eff=0.6, token_overhead_ms=0.0)
    return p


def _sqlog(pred, meas):
    return math.log(pred / meas) ** 2


class _Arrays:
    """Per-point operator arrays so the grid search is vectorised (same formula as estimate_forward)."""

    cache: dict = {}

    @classmethod
    def get(cls, pt: Point):
        if pt.id not in cls.cache:
            import numpy as np

            from projdeploy.check.estimator import scale_weights
            from projdeploy.check.ops import transformer_ops

            shape, prec, wf = MODELS[pt.model][0], PRECISIONS[pt.precision], weight_factor(pt)
            out = {}
            for phase, (new, ctx) in {"decode": (1, pt.prompt + 64), "prefill": (pt.prompt, 0)}.items():
                ops = scale_weights(transformer_ops(shape, new, ctx, prec, logits="last"), wf)
                out[phase] = (
                    np.array([o.flops for o in ops]),
                    np.array([o.bytes for o in ops]),
                    sum(o.dispatch for o in ops),
                    new,
                )
            cls.cache[pt.id] = out
        return cls.cache[pt.id]


def _tok_s(pt: Point, phase: str, ce, be, c):
    """tokens/s for arrays of efficiencies (broadcast), as estimate_lm computes it."""
    import numpy as np

    F, B, nd, toks = _Arrays.get(pt)[phase]
    p = base_params(pt, True)
    ce, be = np.asarray(ce, float)[..., None], np.asarray(be, float)[..., None]
    t = np.maximum(F / (p.peak_gflops * 1e9 * ce), B / (p.bandwidth_gbs * 1e9 * be)).sum(-1)
    ms = t * 1e3 + nd * p.dispatch_us * 1e-3 + c
    return toks / (ms / 1e3)


def fit(points: list[Point]) -> dict:
    """Fit (bandwidth_eff, token_overhead_ms) per (profile, runtime) on decode rows (compute_eff held at the
    prior; decode is bandwidth-bound), then compute_eff per (profile, runtime, compute precision) on prefill rows."""
    import numpy as np

    out = {"decode": {}, "prefill": {}}
    groups = {}
    for pt in points:
        if pt.decode:
            groups.setdefault((pt.profile, pt.runtime), []).append(pt)
    be = np.array(EFF_GRID)[:, None]
    for key, dec in groups.items():
        ovh = np.array(OVH_GRID if len(dec) >= 2 else [0.0])[None, :]
        err = sum(
            np.log(_tok_s(pt, "decode", 0.25, np.broadcast_to(be, (len(EFF_GRID), ovh.shape[1])), ovh) / pt.decode) ** 2
            for pt in dec
        )
        i, j = np.unravel_index(np.argmin(err), err.shape)
        out["decode"][key] = (float(EFF_GRID[i]), float(ovh[0, j]))
    pgroups = {}
    for pt in points:
        if pt.prefill:
            pgroups.setdefault((pt.profile, pt.runtime, PRECISIONS[pt.precision].compute), []).append(pt)
    for key, pts in pgroups.items():
        b, c = out["decode"].get(key[:2], (0.6, 0.0))
        err = sum(np.log(_tok_s(pt, "prefill", np.array(EFF_GRID), b, c) / pt.prefill) ** 2 for pt in pts)
        out["prefill"][key] = float(EFF_GRID[int(np.argmin(err))])
    return out


def params_from_fit(pt: Point, f: dict):
    """Parameters for ``pt`` from a fit, with the estimator's fallback order when a group is missing."""
    p = base_params(pt, True)
    dec = f["decode"].get((pt.profile, pt.runtime))
    if dec is None:  # same runtime elsewhere -> same unit anywhere -> defaults
        same = [v for (prof, rt), v in f["decode"].items() if rt == pt.runtime]
        pool = same or list(f["decode"].values())
        dec = (statistics.median(v[0] for v in pool), statistics.median(v[1] for v in same) if same else 0.0)
    ckey = (pt.profile, pt.runtime, PRECISIONS[pt.precision].compute)
    ce = f["prefill"].get(ckey)
    if ce is None:
        same = [v for k, v in f["prefill"].items() if k[:2] == ckey[:2]] or list(f["prefill"].values())
        ce = statistics.median(same) if same else 0.25
    return dataclasses.replace(p, bandwidth_eff=dec[0], token_overhead_ms=dec[1], compute_eff=ce)


def ratios(rows, key):
    rs = [r[key] for r in rows if r.get(key) is not None]
    worst = max(rs, key=lambda x: max(x, 1 / x)) if rs else None
    med = statistics.median(max(x, 1 / x) for x in rs) if rs else None
    return {"n": len(rs), "median_x": med, "worst_ratio": worst}


def evaluate() -> dict:
    full = fit(POINTS)
    rows = []
    models = sorted({pt.model for pt in POINTS})
    lomo_fits = {m: fit([q for q in POINTS if q.model != m]) for m in models}
    for pt in POINTS:
        r = {
            "id": pt.id,
            "profile": pt.profile,
            "runtime": pt.runtime,
            "model": pt.model,
            "precision": pt.precision,
            "source": pt.source,
            "published_decode": pt.decode,
            "published_prefill": pt.prefill,
            "note": pt.note,
        }
        for proto, params in (
            ("prior", base_params(pt, True)),
            ("insample", base_params(pt, False)),
            ("lomo", params_from_fit(pt, lomo_fits[pt.model])),
        ):
            est = predict(pt, params)
            r[f"{proto}_decode"] = est["decode_tok_s"]
            r[f"{proto}_prefill"] = est["prefill_tok_s"]
            r[f"{proto}_decode_ratio"] = est["decode_tok_s"] / pt.decode if pt.decode else None
            r[f"{proto}_prefill_ratio"] = est["prefill_tok_s"] / pt.prefill if pt.prefill else None
        rows.append(r)
    summary = {
        proto: {ph: ratios(rows, f"{proto}_{ph}_ratio") for ph in ("decode", "prefill")}
        for proto in ("prior", "insample", "lomo")
    }
    for proto in summary:
        allr = [r[f"{proto}_{ph}_ratio"] for r in rows for ph in ("decode", "prefill") if r[f"{proto}_{ph}_ratio"]]
        summary[proto]["all"] = {
            "n": len(allr),
            "median_x": statistics.median(max(x, 1 / x) for x in allr),
            "worst_ratio": max(allr, key=lambda x: max(x, 1 / x)),
        }
    return {"rows": rows, "summary": summary, "fit": full}


def _f(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(res: dict) -> str:
    s = res["summary"]
    out = [
        "# Estimator error on published on-device LLM measurements (bench/estimator_llm.py)",
        "",
        "Command: `.venv/bin/python bench/estimator_llm.py --out bench/results/estimator_llm.md` (deterministic: no timing, "
        "no randomness; the published rows and model shapes are data in bench/estimator_llm.py).",
        "",
        "Error = predicted / published for decode tokens/s and prefill tokens/s. `median x` is the median of "
        "max(r, 1/r) (a factor, 1.0 = exact); `worst` is the ratio furthest from 1.",
        "",
        "| protocol | what it uses | n | median x | worst ratio |",
        "|---|---|---|---|---|",
    ]
    what = {
        "prior": "no fitted efficiency: fallbacks only (compute 0.25, bandwidth 0.6, no per-token overhead)",
        "insample": "shipped profile values, fitted to these same rows (optimistic)",
        "lomo": "leave-one-model-out: refit without every row of the predicted model",
    }
    for proto in ("prior", "insample", "lomo"):
        for ph in ("all", "decode", "prefill"):
            v = s[proto][ph]
            out.append(
                f"| {proto} / {ph} | {what[proto] if ph == 'all' else ''} | {v['n']} | {_f(v['median_x'])} | "
                f"{_f(v['worst_ratio'])} |"
            )
    worst = sorted(
        (
            (r[f"lomo_{ph}_ratio"], r["id"], ph)
            for r in res["rows"]
            for ph in ("decode", "prefill")
            if r[f"lomo_{ph}_ratio"]
        ),
        key=lambda t: -max(t[0], 1 / t[0]),
    )[:4]
    out += [
        "",
        "Worst leave-one-model-out rows: "
        + "; ".join(f"{i} {ph} {x:.2f}" for x, i, ph in worst)
        + ". Groups with a single row (e.g. the only Pi 5 prefill row) fall back to other devices' values when "
        "held out, which is where the large errors come from; the in-sample numbers are optimistic by design.",
    ]
    out += [
        "",
        "## Per row (tokens/s; ratios predicted/published)",
        "",
        "| id | profile / runtime | model, precision | src | decode pub | in-sample | LOMO | prefill pub | "
        "in-sample | LOMO |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        out.append(
            f"| {r['id']} | {r['profile']} / {r['runtime']} | {r['model']} {r['precision']} | {r['source']} | "
            f"{_f(r['published_decode'])} | {_f(r['insample_decode'])} ({_f(r['insample_decode_ratio'])}) | "
            f"{_f(r['lomo_decode'])} ({_f(r['lomo_decode_ratio'])}) | {_f(r['published_prefill'])} | "
            f"{_f(r['insample_prefill'])} ({_f(r['insample_prefill_ratio'])}) | "
            f"{_f(r['lomo_prefill'])} ({_f(r['lomo_prefill_ratio'])}) |"
        )
    out += [
        "",
        "## Fitted values (all rows; these are the FIT numbers in the shipped profiles)",
        "",
        "| profile / runtime | bandwidth_eff | token_overhead_ms |",
        "|---|---|---|",
    ]
    for (prof, rt), (be, c) in res["fit"]["decode"].items():
        out.append(f"| {prof} / {rt} | {be:.2f} | {c:.1f} |")
    out += ["", "| profile / runtime / compute precision | compute_eff |", "|---|---|"]
    for (prof, rt, pr), ce in res["fit"]["prefill"].items():
        out.append(f"| {prof} / {rt} / {pr} | {ce:.2f} |")
    out += ["", "## Rows not used", ""] + [f"- {k}: {v}" for k, v in NOT_USED.items()]
    out += ["", "## Model shapes (public configs)", ""] + [f"- {m}: {src}" for m, (_, src) in MODELS.items()]
    out += [
        "",
        "Notes: rows come from hardware.md section 3 (source ids as there). Prompt lengths not stated by a "
        "source are assumptions (see the row notes in bench/estimator_llm.py). Weight bytes use the published file "
        "size when given, else parameters x bits/weight. Memory (RSS) is not scored here.",
        "",
    ]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    res = evaluate()
    md = markdown(res)
    print(md)
    if a.out:
        Path(a.out).write_text(md)
    return res


if __name__ == "__main__":
    main()
