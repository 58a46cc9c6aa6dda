"""Export benchmark: size, host latency vs PyTorch eager fp32, metric drop per format x recipe (classifiers).

    .venv/bin/python bench/export.py                      # defaults: small models, a few minutes
    .venv/bin/python bench/export.py --size tiny --steps 60 --repeats 20 --out /tmp/export.md

Trains (or takes with --cls-checkpoint) a small classifier on digits-cls, exports
every recipe, validates it on
the whole eval split, and times batch-1 calls of the artifact in its runtime
interleaved with PyTorch eager fp32 calls on the same input in the same run
(so the ratio survives the load of a shared machine; absolute times do not).
Language-model tasks export LM programs (KV cache kept between calls), benchmarked by
bench/lm_decode.py; the decode columns of older results came from the removed static-cache programs.
Threads: 1 for PyTorch and onnxruntime; ExecuTorch uses its default XNNPACK threadpool.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"et_int8_latency": 0.4, "int8_bytes": 0.27, "4bit_bytes": 0.16, "int8_drop": 0.005, "4bit_drop": 0.015}
FOUR_BIT = {"xnnpack-8da4w", "palettize-4bit", "int4-block"}


def train(task, size, steps, out):
    from projdeploy.train.loop import TrainConfig
    from projdeploy.train.small import train_small

    if not (Path(out) / "config.json").is_file():
        train_small(
            task,
            size,
            out,
            TrainConfig(steps=steps, eval_every=0, warmup_steps=max(steps // 10, 1), seed=0),
            progress=False,
        )
    return Path(out)


def model_bytes(path: Path, main_file: str, fmt: str) -> int:
    if fmt == "coreml":
        files = [p for p in path.glob("*.mlpackage/**/*") if p.is_file()]
    else:
        files = [path / main_file]
    return int(sum(p.stat().st_size for p in files))


def pte_breakdown(path: Path) -> dict:
    """Bytes of a .pte by role: delegate weights (named data), non-delegated constants, delegate blobs, rest."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    data = path.read_bytes()
    r = deserialize_pte_binary(data)
    nd = r.named_data
    bufs = [getattr(b, "buffer", b) for b in nd.buffers] if nd else []
    weights = sum(len(bufs[v.buffer_index]) for v in nd.pte_data.values()) if nd else 0
    consts = sum(len(b.storage) for b in r.program.constant_buffer)
    blobs = sum(len(x.data) for x in r.program.backend_delegate_data)
    return {
        "weights": weights,
        "constants": consts,
        "delegate_blobs": blobs,
        "other": len(data) - weights - consts - blobs,
        "delegates": sum(len(p.delegates) for p in r.program.execution_plan),
    }


def onnx_breakdown(path: Path) -> dict:
    """Bytes of a .onnx by role: initializers by dtype, graph (nodes, metadata, value_info)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    by = {}
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        by[str(a.dtype)] = by.get(str(a.dtype), 0) + a.nbytes
    return {**{f"init_{k}": v for k, v in sorted(by.items())}, "other": path.stat().st_size - sum(by.values())}


def breakdown(path: Path, main_file: str, fmt: str) -> dict | None:
    try:
        if fmt == "executorch":
            return pte_breakdown(path / main_file)
        if fmt == "onnx":
            return onnx_breakdown(path / main_file)
    except Exception as e:  # noqa: BLE001 - a diagnostic only: never fail the row
        return {"error": f"{type(e).__name__}: {e}"}
    return None


def timed_pairs(f_art, f_ref, repeats, warmup):
    for _ in range(warmup):
        f_art(), f_ref()
    a, r = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        f_art()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        f_ref()
        r.append(time.perf_counter() - t)
    return np.array(a) * 1e3, np.array(r) * 1e3


def bench_one(ckpt, task_name, fmt, recipe, out, args, ref_model):
    import torch

    from exporters.api import export_checkpoint
    from exporters.base import ExportError
    from exporters.registry import load_runner
    from projdeploy.tasks import get_task

    task = get_task(task_name)
    row = {"format": fmt, "recipe": recipe, "task": task_name}
    t0 = time.perf_counter()
    try:
        art = export_checkpoint(ckpt, fmt, recipe, task_name, out, max_rows=None)
    except ExportError as e:
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        return row
    row["export_s"] = time.perf_counter() - t0
    v = art.validation
    row.update(
        bytes=model_bytes(art.path, art.main_file, fmt),
        metric=v["metric_artifact"],
        metric_float=v["metric_float"],
        metric_drop=v["metric_drop"],
        sqnr_db=v["sqnr_db"],
        simulated=v["simulated"],
        delegated=v.get("delegation", {}).get("fraction"),
        delegated_compute=v.get("delegation", {}).get("compute_fraction"),
        breakdown=breakdown(art.path, art.main_file, fmt),
    )
    from exporters.registry import get_format

    if get_format(fmt).host_gap(art.recipe):
        return row
    runner = load_runner(art.path, threads=1)
    x = task.example_inputs(1)
    prog = "forward"
    xt = torch.as_tensor(x)
    with torch.no_grad():
        a, r = timed_pairs(lambda: runner.run(prog, [x]), lambda: ref_model(xt), args.repeats, args.warmup)
    row.update(
        lat_ms_median=float(np.median(a)),
        lat_ms_p90=float(np.percentile(a, 90)),
        eager_ms_median=float(np.median(r)),
        eager_ms_p90=float(np.percentile(r, 90)),
        lat_ratio=float(np.median(a) / np.median(r)),
    )
    return row


def fmt_row(r, fp32_bytes):
    if "error" in r:
        return f"| {r['format']} | {r['recipe']} | failed: {r['error']} |" + " |" * 8
    ratio = r["bytes"] / fp32_bytes
    lat = (
        f"{r['lat_ms_median']:.3f} / {r['lat_ms_p90']:.3f} | {r['lat_ratio']:.2f}x"
        if "lat_ratio" in r
        else "n/a (no runtime here) | n/a"
    )
    dec = f"{r['decode_tps']:.0f} ({r['eager_decode_tps']:.0f})" if "decode_tps" in r else "-"
    if "decode_ratio" in r:
        dec += f" = {r['decode_ratio']:.2f}x"
    deleg = f"{r['delegated']:.0%}" if r.get("delegated") is not None else "-"
    if r.get("delegated_compute") is not None:
        deleg += f" ({r['delegated_compute']:.0%})"
    sim = " (sim)" if r["simulated"] else ""
    return (
        f"| {r['format']} | {r['recipe']} | {r['bytes']:,} | {ratio:.3f} | {lat} | {dec} | "
        f"{r['metric']:.4f}{sim} | {r['metric_drop']:+.4f} | {r['sqnr_db']:.1f} | {deleg} |"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cls-checkpoint")
    ap.add_argument("--work", default="/tmp/projdeploy-bench-export")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--formats", default="executorch,onnx,coreml")
    ap.add_argument("--tasks", default="digits-cls", help="digits-cls (LM programs: bench/lm_decode.py)")
    ap.add_argument("--recipes", default="", help="comma-separated recipe names to keep (default: all)")
    ap.add_argument("--merge", action="store_true", help="keep the other sections of --out's .json")
    ap.add_argument("--out", default=str(ROOT / "bench/results/export.md"))
    args = ap.parse_args(argv)

    import torch

    from exporters.registry import recipes, tool_versions_line
    from projdeploy.models.checkpoint import load_model

    torch.set_num_threads(1)
    work = Path(args.work)
    given = {"digits-cls": args.cls_checkpoint}
    jobs = {
        t: Path(given[t])
        if given[t]
        else train(t, args.size, args.steps, work / f"{t.replace(':', '_')}-{args.size}-{args.steps}")
        for t in args.tasks.split(",")
    }
    results = {}
    for task_name, ckpt in jobs.items():
        ref = load_model(ckpt)
        fp32 = sum(p.numel() * 4 for p in {id(p): p for p in ref.parameters()}.values())
        rows = []
        for fmt in args.formats.split(","):
            for name in recipes(fmt):
                if args.recipes and name not in args.recipes.split(","):
                    continue
                out = work / "artifacts" / f"{task_name.replace(':', '_')}-{args.size}" / f"{fmt}-{name}"
                r = bench_one(ckpt, task_name, fmt, name, out, args, ref)
                print(json.dumps(r, default=str), flush=True)
                rows.append(r)
        results[f"{task_name} ({args.size})"] = {
            "fp32_param_bytes": fp32,
            "rows": rows,
            "checkpoint": str(ckpt),
            "task": task_name,
            "size": args.size,
            "steps": args.steps,
            "params": ref.config.num_parameters() if hasattr(ref, "config") else None,
            "command": "bench/export.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "tools": tool_versions_line(),
        }
    if args.merge and Path(args.out).with_suffix(".json").is_file():
        results = merge(json.loads(Path(args.out).with_suffix(".json").read_text()), results)
    write_report(args, results, tool_versions_line())
    return results


LEGACY = {
    "size": "small",
    "steps": 150,
    "repeats": 30,
    "warmup": 5,
    "command": "bench/export.py --tasks digits-cls --steps 150 --repeats 30",
}


def merge(old: dict, new: dict) -> dict:
    """Sections of ``old`` updated by ``new``; within a section, rows replaced per (format, recipe)."""
    out = {(k if " (" in k else f"{k} ({LEGACY['size']})"): v for k, v in old.items()}
    for key, sec in new.items():
        prev = out.get(key, {"rows": []})
        cmds = prev.get("commands") or [prev.get("command", LEGACY["command"])] if prev["rows"] else []
        rows = {(r["format"], r["recipe"]): r for r in prev["rows"]}
        rows.update({(r["format"], r["recipe"]): r for r in sec["rows"]})
        out[key] = {
            **prev,
            **sec,
            "rows": list(rows.values()),
            "commands": [c for c in cmds if c != sec["command"]] + [sec["command"]],
        }
    return out


def write_report(args, results, tools):
    machine = (
        f"Machine: {platform.machine()} {platform.system()}, shared 2-core CPU with other jobs running "
        "(load average 10-14 during these runs): absolute ms are noisy; every latency ratio is measured "
        "interleaved (artifact call, eager call, artifact call, ...) in the same run and reported as a ratio "
        "of medians. Batch 1, PyTorch and onnxruntime 1 thread, ExecuTorch default threadpool. Models "
        f"trained with seed 0. Tools: {tools}."
    )
    legend = (
        "Size ratio is the model file(s) over the fp32 parameter bytes. Latency: median / p90 ms of the "
        "artifact (prefill for LMs), and the median ratio to PyTorch eager fp32. Decode: tokens/s of the "
        "`decode` program (eager KV-cache decode of the same prefill/decode modules in brackets; median of "
        "interleaved passes, and the median of the per-pass ratios). Metric on the whole eval split; "
        "drop > 0 = worse. Delegated: share of edge nodes (views included) delegated, in brackets the share "
        "of matmul-class nodes (linear/mm/bmm/conv: the FLOPs). (sim) = Core ML simulated in PyTorch (no "
        "Core ML runtime on Linux)."
    )
    lines = ["# Export benchmark", "", machine, "", legend, ""]
    for key, res in results.items():
        meta = {**LEGACY, "task": key.split(" ")[0], **res}
        cmds = meta.get("commands", [meta["command"]])
        head = "Commands (rows merged, the last run of a row wins)" if len(cmds) > 1 else "Command"
        lines += [
            f"## {key}: fp32 parameters {res['fp32_param_bytes']:,} bytes",
            "",
            f"{head}: "
            + "; ".join(f"`.venv/bin/python {c}`" for c in cmds)
            + f" ({meta['size']} model trained {meta['steps']} steps, seed 0; {meta['warmup']} warm-up + "
            f"{meta['repeats']} timed calls per row).",
            "",
            *[f"Note: {n}" for n in meta.get("notes", [])],
            "",
            (
                "| format | recipe | bytes | x fp32 | latency ms median / p90 | x eager | decode tok/s | metric "
                "| drop | SQNR dB | delegated |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [fmt_row(r, res["fp32_param_bytes"]) for r in res["rows"]]
        lines += ["", targets_text(meta["task"], res), ""]
        bd = [r for r in res["rows"] if r.get("breakdown") and "error" not in r["breakdown"]]
        if bd:
            lines += [
                (
                    "Where the bytes are (ExecuTorch: weights the delegate owns / non-delegated constants / "
                    "delegate blobs / program and padding; ONNX: initializers by dtype / graph):"
                ),
                "",
            ]
            lines += [
                f"- {r['format']}/{r['recipe']}: "
                + ", ".join(
                    f"{k} {v:,}" + (f" ({v / res['fp32_param_bytes']:.3f}x)" if k != "delegates" else "")
                    for k, v in r["breakdown"].items()
                )
                for r in bd
            ]
            lines.append("")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))


def targets_text(task_name, res):
    fp32 = res["fp32_param_bytes"]
    out = ["Targets:"]
    for r in res["rows"]:
        if "error" in r:
            continue
        quant = (r["recipe"] in FOUR_BIT and "4bit") or ("int8" in r["recipe"] and "int8")
        if quant:
            t = TARGETS[f"{quant}_bytes"]
            out.append(
                f"- {r['format']}/{r['recipe']} bytes {r['bytes'] / fp32:.3f}x (target <= {t}x): "
                f"{'met' if r['bytes'] / fp32 <= t else 'NOT met'}"
            )
            if task_name == "digits-cls":
                t = TARGETS[f"{quant}_drop"]
                out.append(
                    f"- {r['format']}/{r['recipe']} accuracy drop {r['metric_drop']:+.4f} (target <= {t}): "
                    f"{'met' if r['metric_drop'] <= t else 'NOT met'}"
                )
        if r["format"] == "executorch" and r["recipe"] == "xnnpack-int8" and "lat_ratio" in r:
            t = TARGETS["et_int8_latency"]
            out.append(
                f"- executorch/xnnpack-int8 latency {r['lat_ratio']:.2f}x eager (target <= {t}x): "
                f"{'met' if r['lat_ratio'] <= t else 'NOT met'}"
            )
    return "\n".join(out)


if __name__ == "__main__":
    main()
