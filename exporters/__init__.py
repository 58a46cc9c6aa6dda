"""exporters: turn a small checkpoint into device packages (ExecuTorch, Core ML, ONNX).

Importing this package is cheap: torch, executorch, coremltools and
onnxruntime are imported inside the functions that use them (tested).

    projdeploy export --list-recipes
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

__all__ = [
    "Artifact",
    "ExportError",
    "ManifestError",
    "ParityError",
    "Recipe",
    "TensorSpec",
    "UnavailableError",
    "read_manifest",
    "verify_manifest",
]
