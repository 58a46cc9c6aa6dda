"""exporters: turn a small checkpoint into device packages (ExecuTorch, Core ML, ONNX).

    projdeploy export --list-recipes

One :class:`Format` per format (``registry.get_format(name)``) owns its recipes,
export, host runner, simulation, device runtime and precision; recipes and their
quantization configs are versioned, serialisable dataclasses dispatched by type
(see docs/exporters.md). Importing this package is cheap: torch, executorch,
coremltools and onnxruntime are imported inside the functions that use them (tested).
"""

from .base import (
    Artifact,
    ExportError,
    ManifestError,
    ParityError,
    Recipe,
    TensorSpec,
    UnavailableError,
    read_manifest,
    verify_manifest,
)
from .format import Format

__all__ = [
    "Artifact",
    "ExportError",
    "Format",
    "ManifestError",
    "ParityError",
    "Recipe",
    "TensorSpec",
    "UnavailableError",
    "read_manifest",
    "verify_manifest",
]
