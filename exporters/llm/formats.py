"""What each format does for an LM program; the format modules' ``write_lm`` / ``open_lm_runner`` call these.

    python -c "from exporters.registry import get_format; print(get_format('onnx').lm_recipes)"

- ExecuTorch: one ``model.pte`` with ``forward(tokens, input_pos)``, the caches as mutable buffers, and
  the LLM runners' constant methods (exporters/llm/et_program.py); host runner :class:`LMRunner`.
- ONNX: Optimum's decoder-with-past ``model.onnx`` (optionally quantized by the recipe's onnxruntime
  config); host runner :class:`ORTLMRunner` binds each call's ``present`` as the next ``past``.
- Core ML: one multifunction ``model.mlpackage`` (``decode`` + ``prefill`` over ``ct.StateType``
  caches, iOS 18); it converts here and cannot run on Linux.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .spec import LMSpec

ET_FILE, ONNX_FILE, COREML_FILE = "model.pte", "model.onnx", "model.mlpackage"
ONNX_PROTOCOL = (
    "logits, present = forward(input_ids (1, T), attention_mask ones (1, past + T), position_ids past..past+T-1, "
    "past_key_values.<i>.key/value = the previous call's present.<i>.key/value, empty (1, kv_heads, 0, head_dim) "
    "at the start); the next token comes from logits[0, -1]; past + T <= max_seq_len. Keep the cache in the "
    "runtime (ORT IO binding / onnxruntime-web tensors): bind present as the next past."
)
COREML_PROTOCOL = (
    "prefill(tokens (1, P) = the prompt of n <= P tokens left-aligned and padded, input_pos 0..P-1) -> logits "
    "(1, P, vocab), read row n-1; then decode(tokens [[token]], input_pos [pos]) -> logits (1, vocab) with "
    "pos = n, n+1, ... < max_seq_len; prefill and decode share the state (the KV cache)."
)


@dataclass(frozen=True)
class LMWritten:
    """A format's LM program files, before validation: the main file, its programs' I/O, the constant
    values the runners read (``runner_metadata``) and export-time figures (delegation, stage timings)."""

    main_file: str
    programs: dict  # program -> {"inputs": [TensorSpec], "outputs": [TensorSpec]}
    runner_metadata: dict
    figures: dict = field(default_factory=dict)
    program: str = "forward"  # the program an app calls per step (manifest ``model.lm.program``)
    kv_cache: str = "in_program"  # in_program (mutable buffers) | io (past inputs / present outputs) | state
    kv_value_bytes: int = 4  # bytes per cached value (fp32: 4, fp16: 2)
    protocol: str | None = None  # how to generate, when it differs from export_lm.PROTOCOL
    kv_io: tuple = ()  # io: (past input, present output) name pairs, in program order
    prefill_len: int | None = None  # state: the static prompt length of the prefill function


def _et_state(checkpoint: Path, spec: LMSpec) -> dict:
    from .weights import hf_to_et, read_safetensors

    return hf_to_et(read_safetensors(checkpoint), spec.tied_embeddings)


def write_executorch(checkpoint: Path, spec: LMSpec, recipe, out: Path) -> LMWritten:
    from .et_program import build_pte
    from .export_lm import programs

    lowered = build_pte(spec, _et_state(checkpoint, spec), recipe)
    (out / ET_FILE).write_bytes(lowered.pte)
    figures = {"delegation": lowered.delegation, "export_timings_s": dict(lowered.timings_s)}
    return LMWritten(ET_FILE, programs(spec), dict(lowered.metadata), figures)


def write_onnx(checkpoint: Path, spec: LMSpec, recipe, out: Path) -> LMWritten:
    from ..onnx_export import graph_io
    from .et_program import runner_metadata
    from .onnx_program import export_onnx_lm

    path = export_onnx_lm(checkpoint, out, opset=recipe.opset)
    if recipe.quantization is not None:
        from ..onnx_quant import quantize

        float_path = path.with_name("model.fp32.onnx")
        path.rename(float_path)
        quantize(float_path, path, recipe)
        float_path.unlink()
    io = graph_io(path)
    pasts = [t.name for t in io["inputs"] if t.name.startswith("past_key_values.")]
    kv_io = tuple((p, p.replace("past_key_values.", "present.")) for p in pasts)
    outs = {t.name for t in io["outputs"]}
    if not kv_io or any(b not in outs for _, b in kv_io):
        from ..base import ExportError

        raise ExportError(f"{path}: not a decoder with past (past inputs {pasts}, outputs {sorted(outs)})")
    return LMWritten(
        ONNX_FILE, {"forward": io}, runner_metadata(spec), kv_cache="io", protocol=ONNX_PROTOCOL, kv_io=kv_io
    )


def write_coreml(checkpoint: Path, spec: LMSpec, recipe, out: Path) -> LMWritten:
    from ..coreml_export import functions_io
    from .coreml_program import export_coreml_lm
    from .et_program import runner_metadata

    info = export_coreml_lm(spec, _et_state(checkpoint, spec), out / COREML_FILE, recipe.prefill_len)
    progs = functions_io(out / COREML_FILE)  # decode + prefill, as the package declares them
    return LMWritten(
        COREML_FILE,
        progs,
        runner_metadata(spec),
        {"coreml": info},
        program="decode",
        kv_cache="state",
        kv_value_bytes=2,
        protocol=COREML_PROTOCOL,
        prefill_len=recipe.prefill_len,
    )


def executorch_runner(artifact, threads: int):
    from .runner import LMRunner

    return LMRunner(artifact.main_path, threads=threads)


def onnx_runner(artifact, threads: int):
    from .onnx_program import ORTLMRunner

    return ORTLMRunner(artifact.main_path, threads=threads, max_seq_len=int(artifact.model["lm"]["max_seq_len"]))
