"""onnxruntime int8 quantization for the ONNX exporter, keyed by config type: dynamic, and static QDQ.

    python -c "from exporters.onnx_quant import QUANTIZERS; print(QUANTIZERS.handlers)"

Both quantize the MatMul/Gemm weights to int8 per output channel; static
QDQ also fixes activation ranges from ``calibration`` (train-split rows of the
task, never eval rows) with min/max calibration.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .config import HandlerTable
from .recipes import OrtInt8Dynamic, OrtInt8Static

QUANTIZERS = HandlerTable("ONNX quantization config")


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


@QUANTIZERS.register(OrtInt8Dynamic)
def _dynamic(config, src: Path, out_path: Path, float_path: Path, recipe, calibration) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(out_path), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"]
    )


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
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )


def quantize(float_path: Path, out_path: Path, recipe, calibration=None) -> None:
    """Quantize ``float_path`` into ``out_path`` with the handler of ``recipe.quantization``'s type."""
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as td:
        pre = _preprocess(Path(float_path), Path(td) / "pre.onnx")
        QUANTIZERS(recipe.quantization, pre, Path(out_path), Path(float_path), recipe, calibration)
