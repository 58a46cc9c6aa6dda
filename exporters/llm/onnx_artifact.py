"""Checkpoint directory -> ONNX LM program artifact: decoder with past (cache as I/O), manifest, small vectors.

    python -m exporters.llm.onnx_artifact --checkpoint runs/lm --out out/lm-onnx --max-seq-len 256

The artifact directory appears atomically: ``model.onnx`` (Optimum's ``text-generation-with-past``
graph, see onnx_program.py), ``manifest.json`` with ``programs.forward`` (the graph's I/O) and
``model.lm`` (``kv_cache: "io"``: which past input each present output feeds, the window, BOS/EOS),
``test_vectors.npz`` (a few kB, made by :class:`~exporters.llm.onnx_program.ORTLMRunner`) and the
checkpoint's tokenizer files. With ``eval_rows`` the program is validated teacher-forced against
the float ``transformers`` model (as export_lm does); a failure raises ``ParityError`` and leaves
nothing behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .export_lm import LMArtifact, _copy_tokenizer
from .onnx_program import MAIN_FILE, ORTLMRunner, export_onnx_lm
from .spec import LMSpec, lm_spec_from_dir

FLOAT_RTOL = 1e-4
PROTOCOL = (
    "reset; logits, present = forward(input_ids = prompt (1, n), attention_mask = ones (1, n), position_ids = 0..n-1, "
    "past = empty (1, kv_heads, 0, head_dim)); repeat: token = argmax(logits[0, -1]); feed each present output as its "
    "kv_io past input; forward([[token]], ones (1, pos + 1), [[pos]]) with pos = n, n+1, ... < max_seq_len."
)


def _dtype(t: str) -> str:
    return {"tensor(int64)": "int64", "tensor(float)": "float32", "tensor(float16)": "float16"}.get(t, t)


def graph_programs(path: Path) -> dict:
    """``{"forward": {inputs, outputs}}`` of the decoder graph, dynamic dimensions named."""
    import onnxruntime as ort

    from ..base import TensorSpec

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def specs(items):
        return [
            TensorSpec(i.name, tuple(d if isinstance(d, int) else str(d) for d in i.shape), _dtype(i.type))
            for i in items
        ]

    return {"forward": {"inputs": specs(sess.get_inputs()), "outputs": specs(sess.get_outputs())}}


def lm_io_section(spec: LMSpec, programs: dict) -> dict:
    """``model.lm`` of a decoder-with-past program: the generic fields plus the past/present pairs."""
    from .export_lm import lm_section

    ins = [t.name for t in programs["forward"]["inputs"]]
    outs = {t.name for t in programs["forward"]["outputs"]}
    pairs = [[n, n.replace("past_key_values.", "present.")] for n in ins if n.startswith("past_key_values.")]
    missing = [p for _, p in pairs if p not in outs]
    if missing or not pairs:
        from ..base import ExportError

        raise ExportError(f"decoder-with-past graph: no present output for {missing or 'any past input'}")
    lm = lm_section(spec, {})
    lm.update(kv_cache="io", kv_io=pairs, protocol=PROTOCOL)
    return lm


def _validate(runner, ckpt: Path, rows, n_prompt: int, total_bytes) -> dict:
    from transformers import AutoModelForCausalLM

    from ..base import ParityError
    from .validate import compare_rows

    if rows is None:
        return {"skipped": "no eval rows", "passed": None}
    hf = AutoModelForCausalLM.from_pretrained(str(ckpt), use_safetensors=True, local_files_only=True)
    fig = compare_rows(runner, hf.float().eval(), rows, n_prompt, total_bytes)
    fig["passed"] = fig["rel_diff"] <= FLOAT_RTOL and fig["top1_agreement"] >= 0.99
    if not fig["passed"]:
        raise ParityError(f"onnx LM program failed validation (rel diff {fig['rel_diff']:.3g})", fig)
    return fig


def export_onnx_lm_artifact(
    checkpoint_dir,
    out_dir,
    *,
    max_seq_len: int = 256,
    eval_rows=None,
    n_prompt: int | None = None,
    total_bytes: int | None = None,
    model_info: dict | None = None,
    threads: int = 1,
) -> LMArtifact:
    """Export ``checkpoint_dir`` (a Hugging Face decoder dir) as an ONNX decoder-with-past artifact."""
    from projdeploy.fsutil import atomic_dir

    from ..base import write_manifest
    from ..registry import get_format
    from .vectors import make_vectors, write_vectors

    ckpt = Path(checkpoint_dir)
    spec = lm_spec_from_dir(ckpt, max_seq_len)
    recipe = get_format("onnx").recipe("fp32", lm=True)  # an LM recipe: load_runner opens the LM runner
    rows = None if eval_rows is None else np.asarray(eval_rows, np.int64)[:, : spec.max_seq_len + 1]
    t0 = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        export_onnx_lm(ckpt, tmp)
        timings = {"export": round(time.perf_counter() - t0, 2)}
        tok_files = _copy_tokenizer(ckpt, tmp)
        runner = ORTLMRunner(tmp / MAIN_FILE, threads=threads, max_seq_len=spec.max_seq_len)
        n = n_prompt or (rows.shape[1] // 2 if rows is not None else 1)
        fig = _validate(runner, ckpt, rows, n, total_bytes)
        prompt = rows[0, : min(8, rows.shape[1])] if rows is not None else [spec.bos_id]
        write_vectors(tmp, make_vectors(runner, prompt, rtol=1e-4, atol=1e-4))
        timings["total"] = round(time.perf_counter() - t0, 2)
        progs = graph_programs(tmp / MAIN_FILE)
        model = dict(model_info or {})
        model.update(architecture=spec.architecture, task_kind="lm", config=spec.to_dict(), tokenizer_files=tok_files)
        model.setdefault("modality", "text")
        model["lm"] = lm_io_section(spec, progs)
        fig["export_timings_s"] = timings
        m = write_manifest(
            tmp, format="onnx", recipe=recipe, main_file=MAIN_FILE, programs=progs, model=model, validation=fig
        )
    return LMArtifact(path=Path(out_dir), recipe=recipe, spec=spec, manifest=m)


def main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-seq-len", type=int, default=256)
    a = p.parse_args(argv)
    art = export_onnx_lm_artifact(a.checkpoint, a.out, max_seq_len=a.max_seq_len)
    print(json.dumps({"path": str(art.path), "lm": art.manifest["model"]["lm"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
