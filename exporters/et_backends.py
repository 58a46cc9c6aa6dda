"""ExecuTorch delegate backends: partitioners, host runtime, device runtime and compute precision per backend.

    python -c "from exporters.et_backends import BACKENDS; print(list(BACKENDS))"

Each backend registers itself with ``@backend(...)`` on the function that
returns its partitioners; ``BACKENDS`` is the table the ExecuTorch format and
its recipes read. Toolchain imports happen inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    name: str
    partitioners: Callable  # (recipe) -> [Partitioner]
    runtime: str  # device-profile runtime of projdeploy check
    runtime_note: str
    fp16: bool = False  # the delegate computes in float16
    runs_here: bool = True  # executorch.runtime on this host can execute its delegate blobs
    missing: Callable = lambda recipe: None  # (recipe) -> why lowering is impossible here, or None


BACKENDS: dict[str, Backend] = {}


def backend(name: str, **facts):
    def deco(fn):
        BACKENDS[name] = Backend(name, fn, **facts)
        return fn

    return deco


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError("ExecuTorch backend", name, BACKENDS)
    return BACKENDS[name]


@backend("xnnpack", runtime="executorch-xnnpack", runtime_note="ExecuTorch XNNPACK")
def _xnnpack(recipe) -> list:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

    if recipe.quantization is not None and recipe.quantization.dynamic_linear_partition:
        # dynamically quantized linears first, per op (one merged partition can form a cycle), then fp32
        return [XnnpackDynamicallyQuantizedPartitioner(per_op_mode=True), XnnpackPartitioner()]
    return [XnnpackPartitioner()]


def _coreml_missing(recipe) -> str | None:
    try:
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner  # noqa: F401
    except Exception as e:
        return (
            f"recipe {recipe.name!r}: the Core ML delegate is not available on this machine ({type(e).__name__}: {e})"
        )
    return None


@backend(
    "coreml",
    runtime="coreml",
    runtime_note="ExecuTorch Core ML delegate",
    fp16=True,
    runs_here=False,
    missing=_coreml_missing,
)
def _coreml(recipe) -> list:
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    return [CoreMLPartitioner()]


def _qnn_missing(recipe) -> str | None:
    import os
    from pathlib import Path

    sdk = os.environ.get("QNN_SDK_ROOT")
    if not sdk or not Path(sdk).is_dir():
        return (
            f"recipe {recipe.name!r}: the Qualcomm delegate is not available on this "
            "machine (lowering needs the Qualcomm AI Engine SDK; set QNN_SDK_ROOT)"
        )
    return None


@backend(
    "qnn",
    runtime="qnn-npu",
    runtime_note="ExecuTorch QNN delegate",
    fp16=True,
    runs_here=False,
    missing=_qnn_missing,
)
def _qnn(recipe) -> list:  # pragma: no cover - needs the Qualcomm SDK
    from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
    from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
    from executorch.backends.qualcomm.utils.utils import (
        generate_htp_compiler_spec,
        generate_qnn_executorch_compiler_spec,
    )

    spec = generate_qnn_executorch_compiler_spec(QcomChipset.SM8650, generate_htp_compiler_spec(use_fp16=True))
    return [QnnPartitioner(spec)]


@backend(
    "portable",
    runtime="executorch-xnnpack",
    runtime_note="portable kernels estimated with XNNPACK figures (optimistic)",
)
def _portable(recipe) -> list:
    return []
