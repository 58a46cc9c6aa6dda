"""Recipe dataclasses for every format: frozen, versioned, validated on construction, serialisable.

    projdeploy export --list-recipes

A recipe is plain data: what to quantize and how, what to lower to, and the
validation thresholds the artifact must meet (``atol`` for float recipes,
``sqnr_floor_db`` for quantized ones, ``max_metric_drop`` — ``None`` means
the task's budget). ``recipe_from_dict(r.to_dict()) == r`` (tested).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import Recipe


def _bad(recipe: str, field: str, problem: str):
    from projdeploy.errors import ConfigError

    raise ConfigError(f"recipe {recipe!r}", field, problem)


def _choice(recipe, field, value, allowed):
    if value not in allowed:
        _bad(recipe, field, f"{value!r} is not one of {', '.join(map(str, allowed))}")


@dataclass(frozen=True)
class ExportRecipe(Recipe):
    atol: float | None = None  # float recipes: max |artifact - float| on eval logits
    sqnr_floor_db: float | None = None  # quantized recipes: SQNR floor of eval logits
    max_metric_drop: float | None = None  # None -> task.budget["max_metric_drop"]

    def __post_init__(self):
        if (self.atol is None) == (self.sqnr_floor_db is None):
            _bad(self.name, "atol/sqnr_floor_db", "set exactly one (atol for float, SQNR floor for quantized)")

    @property
    def quantized(self) -> bool:
        return self.sqnr_floor_db is not None


@dataclass(frozen=True)
class ExecuTorchRecipe(ExportRecipe):
    backend: str = "xnnpack"  # xnnpack | coreml | qnn | portable
    quantization: str = "none"  # none | int8-dynamic | 8da4w
    group_size: int = 32  # 8da4w weight group size

    def __post_init__(self):
        super().__post_init__()
        _choice(self.name, "backend", self.backend, ("xnnpack", "coreml", "qnn", "portable"))
        _choice(self.name, "quantization", self.quantization, ("none", "int8-dynamic", "8da4w"))
        if self.group_size <= 0 or self.group_size % 8:
            _bad(self.name, "group_size", "must be a positive multiple of 8")


@dataclass(frozen=True)
class CoreMLRecipe(ExportRecipe):
    precision: str = "fp16"  # compute precision of activations
    compression: str = "none"  # none | int8-linear | palettize | int4-block
    nbits: int = 8
    block_size: int = 32  # int4-block
    weight_threshold: int = 2048  # weights with fewer elements stay uncompressed (coremltools default)
    compute_units: str = "ALL"  # ALL | CPU_ONLY | CPU_AND_GPU | CPU_AND_NE
    minimum_deployment_target: str = "iOS17"

    def __post_init__(self):
        super().__post_init__()
        _choice(self.name, "precision", self.precision, ("fp16", "fp32"))
        _choice(self.name, "compression", self.compression, ("none", "int8-linear", "palettize", "int4-block"))
        _choice(self.name, "compute_units", self.compute_units, ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"))
        _choice(
            self.name,
            "minimum_deployment_target",
            self.minimum_deployment_target,
            ("iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15"),
        )
        if self.compression == "palettize":
            _choice(self.name, "nbits", self.nbits, (1, 2, 3, 4, 6, 8))
        if self.compression == "int4-block" and self.minimum_deployment_target not in ("iOS18", "macOS15"):
            _bad(self.name, "minimum_deployment_target", "per-block int4 needs iOS18 or macOS15")


@dataclass(frozen=True)
class ONNXRecipe(ExportRecipe):
    exporter: str = "dynamo"  # dynamo (torch.onnx) | optimum (Hugging Face checkpoints)
    quantization: str = "none"  # none | int8-dynamic | int8-static
    ort_format: bool = False  # also write model.ort (onnxruntime mobile format)
    opset: int = 18
    calibration_rows: int = 64  # int8-static: train-split rows used to calibrate

    def __post_init__(self):
        super().__post_init__()
        _choice(self.name, "exporter", self.exporter, ("dynamo", "optimum"))
        _choice(self.name, "quantization", self.quantization, ("none", "int8-dynamic", "int8-static"))


RECIPE_TYPES = {c.__name__: c for c in (ExecuTorchRecipe, CoreMLRecipe, ONNXRecipe)}


def recipe_from_dict(d: dict) -> ExportRecipe:
    """Rebuild a recipe from ``to_dict()`` output (e.g. a manifest's ``recipe`` field)."""
    from projdeploy.errors import UnknownNameError

    d = dict(d)
    typ = d.pop("type", None)
    if typ not in RECIPE_TYPES:
        raise UnknownNameError("recipe type", str(typ), RECIPE_TYPES)
    cls = RECIPE_TYPES[typ]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        _bad(d.get("name", "?"), sorted(unknown)[0], f"unknown field; known: {', '.join(sorted(names))}")
    return cls(**d)
