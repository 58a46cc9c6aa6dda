"""onnxruntime quantization for the ONNX exporter, keyed by config type.

    python -c "from exporters.onnx_quant import QUANTIZERS; print(QUANTIZERS.handlers)"

- ``OrtInt8Dynamic``: ``quantize_dynamic``, int8 MatMul/Gemm weights per output channel, activations
  quantized at run time with one scale per tensor (the largest token of a sequence sets it);
- ``OrtInt8Static``: ``quantize_static`` QDQ, activation ranges calibrated on ``calibration`` (train-split
  rows of the task, never eval rows);
- ``OrtWeightOnly``: ``MatMulNBitsQuantizer`` (RTN or HQQ), 8/4-bit weights with one scale per block,
  float activations: onnxruntime's own LLM path. The token embedding (Gather) is quantized in a separate
  pass (int8 per tensor, or int4 blocks).

Only fully connected layers are quantized (ORT's and Optimum's guidance for transformers: LayerNorm,
GELU, Softmax and residual adds stay float; attention's activation x activation MatMuls stay float,
``MatMulConstBOnly``). ``keep_float`` patterns keep chosen modules' matmuls float (e.g. ``*lm_head``),
matched on the module scope torch.onnx records on each node.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .config import HandlerTable
from .recipes import OrtInt8Dynamic, OrtInt8Static, OrtWeightOnly

QUANTIZERS = HandlerTable("ONNX quantization config")
CALIBRATION = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


class _Reader:
    """onnxruntime CalibrationDataReader over a list of input_ids arrays."""

    def __init__(self, input_names, batches):
        self.input_names, self.batches, self.i = input_names, batches, 0

    def get_next(self):
        import numpy as np

        from .onnx_export import feed_for

        if self.i >= len(self.batches):
            return None
        ids = np.asarray(self.batches[self.i], np.int64)
        self.i += 1
        return feed_for(self.input_names, [ids], "calibration")

    def rewind(self):
        self.i = 0


def _preprocess(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return dst
    except Exception:  # pre-processing is an optimisation; quantize the original if it fails
        return src


def scoped_nodes(path: Path, patterns: tuple, ops=("MatMul", "Gemm")) -> list[str]:
    """Names of the ``ops`` nodes whose module scope matches one of ``patterns`` (fnmatch)."""
    import ast
    from fnmatch import fnmatch

    import onnx

    from .localize import SCOPES_KEY

    if not patterns:
        return []
    out = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        if node.op_type not in ops or SCOPES_KEY not in meta:
            continue
        if any(fnmatch(s, pat) for s in ast.literal_eval(meta[SCOPES_KEY]) for pat in patterns):
            out.append(node.name)
    return out


@QUANTIZERS.register(OrtInt8Dynamic)
def _dynamic(config, src: Path, out_path: Path, float_path: Path, recipe, calibration) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=config.per_channel,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=scoped_nodes(src, config.keep_float),
        extra_options={"MatMulConstBOnly": True},
    )


@QUANTIZERS.register(OrtWeightOnly)
def _weight_only(config, src: Path, out_path: Path, float_path: Path, recipe, calibration) -> None:
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    if config.algorithm == "hqq":
        algo = nbits.HQQWeightOnlyQuantConfig(block_size=config.block_size, bits=config.bits)
    else:
        algo = nbits.DefaultWeightOnlyQuantConfig(
            block_size=config.block_size,
            is_symmetric=True,
            accuracy_level=config.accuracy_level or None,
            bits=config.bits,
            op_types_to_quantize=("MatMul",),
            quant_axes=(("MatMul", 0),),
        )
    skip = scoped_nodes(src, config.keep_float)
    q = nbits.MatMulNBitsQuantizer(onnx.load(str(src)), nodes_to_exclude=skip, algo_config=algo)
    q.process()
    q.model.save_model_to_file(str(out_path), False)
    _embeddings(config, Path(out_path))


def _embeddings(config, path: Path) -> None:
    """Quantize the Gather (embedding) tables of ``path`` in place, in their own pass."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    if config.embeddings == "float":
        return
    tmp = path.with_suffix(".emb.onnx")
    if config.embeddings == "int8":
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["Gather"])
    else:
        algo = nbits.DefaultWeightOnlyQuantConfig(
            block_size=32, is_symmetric=True, bits=4, op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),)
        )
        q = nbits.MatMulNBitsQuantizer(onnx.load(str(path)), algo_config=algo)
        q.process()
        q.model.save_model_to_file(str(tmp), False)
    tmp.replace(path)


@QUANTIZERS.register(OrtInt8Static)
def _static(config, src: Path, out_path: Path, float_path: Path, recipe, calibration) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from .base import ExportError
    from .onnx_export import graph_io

    if not calibration:
        raise ExportError(f"recipe {recipe.name!r} needs calibration inputs (the task's train rows)")
    names = [t.name for t in graph_io(Path(float_path))["inputs"]]
    quantize_static(
        str(src),
        str(out_path),
        _Reader(names, list(calibration)),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=scoped_nodes(src, config.keep_float),
        per_channel=config.per_channel,
        calibrate_method=getattr(CalibrationMethod, CALIBRATION[config.calibration_method]),
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "MatMulConstBOnly": True},
    )


def untie_transposed_weights(src: Path, dst: Path) -> Path:
    """Replace every ``Transpose`` of a 2-D weight initializer by its own transposed initializer (``dst``).

    A tied output layer exports as ``MatMul(h, Transpose(embedding))``. onnxruntime's quantizers take a
    MatMul whose weight is an initializer only, so the output layer stayed float and the embedding table
    was stored twice: float for it, quantized for the ``Gather`` (SmolLM2-135M: 222 MB for int4 weights,
    BENCHMARKS.md). Untied, both copies are quantized. Returns ``src`` when there is nothing to fold."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    keep, folded = [], []
    for node in model.graph.node:
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [1, 0])
        w = inits.get(node.input[0]) if node.op_type == "Transpose" and node.input else None
        if w is None or len(w.dims) != 2 or perm != [1, 0]:
            keep.append(node)
            continue
        folded.append(numpy_helper.from_array(numpy_helper.to_array(w).T.copy(), node.output[0]))
    if not folded:
        return src
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.initializer.extend(folded)
    big = sum(len(i.raw_data) for i in model.graph.initializer) > 1_500_000_000  # protobuf's 2 GB limit
    onnx.save(model, str(dst), save_as_external_data=big, all_tensors_to_one_file=True, location=f"{dst.name}.data")
    return dst


def quantize(float_path: Path, out_path: Path, recipe, calibration=None) -> None:
    """Quantize ``float_path`` into ``out_path`` with the handler of ``recipe.quantization``'s type."""
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as td:
        weight_only = isinstance(recipe.quantization, OrtWeightOnly)  # MatMulNBits needs no pre-processing
        untied = untie_transposed_weights(Path(float_path), Path(td) / "untied.onnx")
        pre = untied if weight_only else _preprocess(untied, Path(td) / "pre.onnx")
        QUANTIZERS(recipe.quantization, pre, Path(out_path), Path(float_path), recipe, calibration)
