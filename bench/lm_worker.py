"""One LM runner's timing in a fresh process (runs in projdeploy's env or the optimum-executorch env).

    .venv/bin/python bench/lm_worker.py --kind pte --model out/lm-et/model.pte --prompt ids.json --new 128 --threads 2

Prints one JSON line: per-pass prefill / decode tokens per second, the greedy tokens, peak RSS, and
the resident memory during decode over the process's own baseline (Python and the runtime's libraries,
measured after their imports and before the model loads).
``--kind pte`` runs any ExecuTorch LLM program with ``forward(tokens, positions)`` and its cache
inside (projdeploy's, optimum-executorch's; ``--preload optimum.executorch`` registers the latter's
kernels); ``--kind hf`` runs transformers eager with its DynamicCache; ``--kind ort`` an ONNX decoder-with-past
through ONNX Runtime's IO binding (exporters/llm/onnx_program.py). Self-contained on purpose:
it imports neither projdeploy nor exporters, so both environments run the same code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import time

MEM = {}


def rss_mb(field: str = "VmRSS") -> float:
    """Current (``VmRSS``) or peak (``VmHWM``) resident memory of this process, MB (Linux /proc)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pte_step(path: str, threads: int):
    import torch
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(threads)
    runtime = Runtime.get()
    MEM["base_rss_mb"] = rss_mb()
    prog = runtime.load_program(path)
    method = prog.load_method("forward")
    pos_meta = method.metadata.input_tensor_meta(1)
    per_token_positions = list(pos_meta.sizes())[0] > 1  # optimum: cache_position (T,); projdeploy: (1,)

    def step(ids: list[int], pos: int):
        t = torch.tensor([ids], dtype=torch.long)
        p = torch.arange(pos, pos + len(ids)) if per_token_positions else torch.tensor([pos])
        out = method.execute([t, p])[0]
        return out.reshape(-1, out.shape[-1])[-1]

    return step


def hf_step(path: str, threads: int):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    MEM["base_rss_mb"] = rss_mb()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    state = {}

    def step(ids: list[int], pos: int):
        with torch.no_grad():
            if pos == 0:
                state["cache"] = None
            out = model(torch.tensor([ids]), past_key_values=state["cache"], use_cache=True)
            state["cache"] = out.past_key_values
            return out.logits[0, -1]

    return step


def ort_step(path: str, threads: int):
    """ONNX Runtime with IO binding: each call's ``present`` OrtValues are bound as the next ``past``."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    MEM["base_rss_mb"] = rss_mb()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    past_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    _, heads, _, hd = next(i.shape for i in sess.get_inputs() if i.name == past_names[0])
    state = {}

    def step(ids: list[int], pos: int):
        if pos == 0:
            zero = np.zeros((1, int(heads), 0, int(hd)), np.float32)
            state["past"] = [ort.OrtValue.ortvalue_from_numpy(zero) for _ in past_names]
        b = sess.io_binding()
        b.bind_cpu_input("input_ids", np.asarray([ids], np.int64))
        b.bind_cpu_input("attention_mask", np.ones((1, pos + len(ids)), np.int64))
        b.bind_cpu_input("position_ids", np.arange(pos, pos + len(ids), dtype=np.int64)[None])
        for name, v in zip(past_names, state["past"]):
            b.bind_ortvalue_input(name, v)
        b.bind_output("logits")
        for name in past_names:
            b.bind_output(name.replace("past_key_values.", "present."))
        sess.run_with_iobinding(b)
        outs = b.get_outputs()
        state["past"] = outs[1:]
        return outs[0].numpy()[0, -1]

    return step


def one_pass(step, prompt: list[int], new: int) -> dict:
    t0 = time.perf_counter()
    logits = step(prompt, 0)
    t1 = time.perf_counter()
    toks = [int(logits.argmax())]
    for i in range(new - 1):
        logits = step([toks[-1]], len(prompt) + i)
        toks.append(int(logits.argmax()))
    t2 = time.perf_counter()
    return {"prefill_tok_s": len(prompt) / (t1 - t0), "decode_tok_s": (new - 1) / (t2 - t1), "tokens": toks}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["pte", "hf", "ort"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", required=True, help="JSON file with a list of token ids")
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--preload", action="append", default=[])
    a = ap.parse_args()
    for mod in a.preload:
        importlib.import_module(mod)
    prompt = json.load(open(a.prompt))
    t0 = time.perf_counter()
    step = {"pte": pte_step, "hf": hf_step, "ort": ort_step}[a.kind](a.model, a.threads)
    load_s = time.perf_counter() - t0
    passes = [one_pass(step, prompt, a.new) for _ in range(a.passes)]
    decode_rss = rss_mb()  # resident after the last decode pass, the program and its KV cache in use
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "load_s": load_s,
                "prefill_tok_s": [p["prefill_tok_s"] for p in passes],
                "decode_tok_s": [p["decode_tok_s"] for p in passes],
                "tokens": passes[-1]["tokens"],
                "peak_rss_mb": peak_rss,
                "decode_rss_mb": decode_rss,
                "base_rss_mb": MEM.get("base_rss_mb"),
            }
        )
    )


if __name__ == "__main__":
    main()
