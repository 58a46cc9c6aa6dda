"""Recipe and quantization-config dataclasses for every format: frozen, versioned, validated, serialisable.

    projdeploy export --list-recipes

A recipe is plain data: what to lower to, which quantization/compression
config to apply (a typed config, dispatched by its type: see
exporters/config.py), and the validation thresholds the artifact must meet
(``atol`` for float recipes, ``sqnr_floor_db`` for quantized ones,
``max_metric_drop`` — ``None`` means the task's budget).
``recipe_from_dict(r.to_dict()) == r`` (tested for every shipped recipe).
The facts a quantization config implies for the device estimator (bytes per
weight, compute precision) live on the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Recipe
from .config import Config, config_from_dict


def _bad(recipe: str, field: str, problem: str):
    from projdeploy.errors import ConfigError

    raise ConfigError(f"recipe {recipe!r}", field, problem)


def _choice(recipe, field, value, allowed):
    if value not in allowed:
        _bad(recipe, field, f"{value!r} is not one of {', '.join(map(str, allowed))}")


def _kind(recipe, field, value, base: type):
    if value is not None and not isinstance(value, base):
        known = sorted(n for n, t in Config.registered.items() if issubclass(t, base) and t is not base)
        _bad(recipe, field, f"{type(value).__name__} is not a {base.__name__}; known: {', '.join(known)}")


def _precision(name: str, weight_bytes: float, act_bytes: float, compute: str):
    from projdeploy.check.ops import Precision

    return Precision(name, weight_bytes, act_bytes, compute)


# --- quantization configs: ExecuTorch ---------------------------------------------------
@dataclass(frozen=True)
class ExecuTorchQuant(Config):
    """Base of ExecuTorch quantization configs (see exporters/et_quant.py for their handlers)."""

    version: int = 1
    dynamic_linear_partition: ClassVar[bool] = False  # XNNPACK: dynamically quantized linears first

    def precision(self):
        raise NotImplementedError


@dataclass(frozen=True)
class PT2EInt8Dynamic(ExecuTorchQuant):
    """PT2E ``XNNPACKQuantizer``: symmetric per-channel int8 weights, dynamic per-token int8 activations.
    ``keep_float``: module-path patterns (fnmatch) left unquantized, e.g. ``("*lm_head", "*score")``."""

    keep_float: tuple = ()
    dynamic_linear_partition: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "keep_float", tuple(self.keep_float))

    def precision(self):
        return _precision("int8-dynamic", 1.0, 4.0, "int8"), "int8-dynamic quantization (fp32 activations between ops)"


@dataclass(frozen=True)
class Torchao8da4w(ExecuTorchQuant):
    """torchao int8 dynamic activations, int4 weights in groups of ``group_size`` inputs."""

    group_size: int = 32
    keep_float: tuple = ()  # module-path patterns (fnmatch) left unquantized

    def __post_init__(self):
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        if self.group_size <= 0 or self.group_size % 8:
            _bad("8da4w", "group_size", "must be a positive multiple of 8")

    def precision(self):
        g = self.group_size
        return _precision(
            "int4", 0.5 + 2 / g, 4.0, "int4"
        ), f"8da4w (4-bit weights, group {g}, int8 dynamic activations)"


# --- quantization configs: ONNX -----------------------------------------------------------
@dataclass(frozen=True)
class ONNXQuant(Config):
    """Base of onnxruntime quantization configs (see exporters/onnx_quant.py)."""

    version: int = 1
    label: ClassVar[str] = ""

    def precision(self):
        return _precision("int8-dynamic", 1.0, 4.0, "int8"), f"{self.label} quantization (fp32 activations between ops)"


def _patterns(config, field: str = "keep_float") -> None:
    """Tuple fields come back from JSON as lists: store them as tuples (frozen, comparable)."""
    object.__setattr__(config, field, tuple(getattr(config, field)))


@dataclass(frozen=True)
class OrtInt8Dynamic(ONNXQuant):
    """``quantize_dynamic``: int8 MatMul/Gemm weights (per output channel), activations quantized at run time
    with one scale per tensor. ``keep_float``: module-path patterns (fnmatch) whose matmuls stay float."""

    per_channel: bool = True
    keep_float: tuple = ()
    label: ClassVar[str] = "int8-dynamic"

    def __post_init__(self):
        _patterns(self)


@dataclass(frozen=True)
class OrtInt8Static(ONNXQuant):
    """``quantize_static`` QDQ: int8 symmetric weights and activations, calibrated (minmax | percentile | entropy)."""

    per_channel: bool = True
    calibration_method: str = "minmax"
    keep_float: tuple = ()
    label: ClassVar[str] = "int8-static"

    def __post_init__(self):
        _patterns(self)
        _choice("int8-static", "calibration_method", self.calibration_method, ("minmax", "percentile", "entropy"))

    def precision(self):
        return _precision("int8", 1.0, 1.0, "int8"), "int8-static quantization (int8 activations between ops)"


@dataclass(frozen=True)
class OrtWeightOnly(ONNXQuant):
    """onnxruntime ``MatMulNBits``: ``bits``-bit weights with one scale per ``block_size`` inputs, activations
    float (``accuracy_level`` 4: int8 per block at run time). ``algorithm``: ``rtn`` (round to nearest,
    symmetric) or ``hqq`` (half-quadratic, with zero points). The token embedding table (Gather) is quantized
    separately: ``embeddings`` float | int8 (per tensor) | int4 (per 32 values)."""

    bits: int = 8
    block_size: int = 32
    algorithm: str = "rtn"
    accuracy_level: int = 0
    embeddings: str = "int8"
    keep_float: tuple = ()
    label: ClassVar[str] = "weight-only"

    def __post_init__(self):
        _patterns(self)
        _choice("weight-only", "bits", self.bits, (4, 8))
        _choice("weight-only", "algorithm", self.algorithm, ("rtn", "hqq"))
        _choice("weight-only", "accuracy_level", self.accuracy_level, (0, 1, 2, 3, 4))
        _choice("weight-only", "embeddings", self.embeddings, ("float", "int8", "int4"))
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            _bad("weight-only", "block_size", "must be a power of two >= 16 (onnxruntime MatMulNBits)")
        if self.algorithm == "hqq" and self.bits != 4:
            _bad("weight-only", "algorithm", "hqq needs bits 4 in onnxruntime")

    def precision(self):
        compute = "int8" if self.accuracy_level == 4 else "fp32"
        name = "int8" if self.bits == 8 else "int4"
        why = f"{self.bits}-bit weight-only (block {self.block_size}, {self.algorithm}), {compute} compute"
        return _precision(name, self.bits / 8 + 4 / self.block_size, 4.0, compute), why


# --- compression configs: Core ML ---------------------------------------------------------
@dataclass(frozen=True)
class CoreMLCompression(Config):
    """Base of Core ML weight compressions (coremltools handlers in coreml_export.py, simulation in coreml_sim.py)."""

    version: int = 1
    label: ClassVar[str] = ""
    needs_targets: ClassVar[tuple | None] = None  # minimum deployment targets that support it

    @property
    def bits(self) -> int:
        raise NotImplementedError

    def scale_bytes_per_weight(self) -> float:
        return 0.0

    def precision(self, act: str):
        from projdeploy.check.ops import PRECISIONS

        nb, base = self.bits, PRECISIONS[act]
        name = "int8" if nb == 8 else "int4"
        why = f"Core ML {self.label} ({nb}-bit weights), {act} compute"
        return _precision(name, nb / 8 + self.scale_bytes_per_weight(), base.act_bytes, act), why


@dataclass(frozen=True)
class CoreMLInt8Linear(CoreMLCompression):
    """Symmetric int8 weights, one scale per output channel."""

    label: ClassVar[str] = "int8-linear"

    @property
    def bits(self) -> int:
        return 8


@dataclass(frozen=True)
class CoreMLPalettize(CoreMLCompression):
    """A per-tensor look-up table of 2**nbits k-means centroids."""

    nbits: int = 4
    label: ClassVar[str] = "palettize"

    def __post_init__(self):
        _choice("palettize", "nbits", self.nbits, (1, 2, 3, 4, 6, 8))

    @property
    def bits(self) -> int:
        return self.nbits


@dataclass(frozen=True)
class CoreMLInt4Block(CoreMLCompression):
    """Symmetric int4 weights, one scale per ``block_size`` inputs (iOS18 / macOS15)."""

    block_size: int = 32
    label: ClassVar[str] = "int4-block"
    needs_targets: ClassVar[tuple | None] = ("iOS18", "macOS15")

    @property
    def bits(self) -> int:
        return 4

    def scale_bytes_per_weight(self) -> float:
        return 2 / self.block_size


# --- recipes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportRecipe(Recipe):
    atol: float | None = None  # float recipes: |artifact - float| <= atol + rtol * max|float|, per output
    rtol: float = 0.0  # float recipes: the scale-aware part of that bound (exporters/tolerance.py)
    sqnr_floor_db: float | None = None  # quantized recipes: SQNR floor of eval logits
    max_metric_drop: float | None = None  # None -> task.budget["max_metric_drop"]
    calibration_rows: int = 64  # train-split rows offered to calibrating quantizers

    def __post_init__(self):
        if (self.atol is None) == (self.sqnr_floor_db is None):
            _bad(self.name, "atol/sqnr_floor_db", "set exactly one (atol for float, SQNR floor for quantized)")
        if self.rtol < 0 or (self.atol is not None and self.atol < 0):
            _bad(self.name, "atol/rtol", "must be >= 0")

    @property
    def tolerance(self):
        """The float parity bound (exporters/tolerance.py); None for quantized recipes."""
        from .tolerance import Tolerance

        return None if self.atol is None else Tolerance(self.atol, self.rtol)

    @property
    def quantized(self) -> bool:
        return self.sqnr_floor_db is not None


@dataclass(frozen=True)
class ExecuTorchRecipe(ExportRecipe):
    backend: str = "xnnpack"  # a name in exporters.et_backends.BACKENDS
    quantization: ExecuTorchQuant | None = None

    def __post_init__(self):
        from .et_backends import BACKENDS

        super().__post_init__()
        _choice(self.name, "backend", self.backend, tuple(BACKENDS))
        _kind(self.name, "quantization", self.quantization, ExecuTorchQuant)


@dataclass(frozen=True)
class CoreMLRecipe(ExportRecipe):
    precision: str = "fp16"  # compute precision of activations
    compression: CoreMLCompression | None = None
    weight_threshold: int = 2048  # weights with fewer elements stay uncompressed (coremltools default)
    compute_units: str = "ALL"  # ALL | CPU_ONLY | CPU_AND_GPU | CPU_AND_NE
    minimum_deployment_target: str = "iOS17"

    def __post_init__(self):
        super().__post_init__()
        _choice(self.name, "precision", self.precision, ("fp16", "fp32"))
        _kind(self.name, "compression", self.compression, CoreMLCompression)
        _choice(self.name, "compute_units", self.compute_units, ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"))
        _choice(
            self.name,
            "minimum_deployment_target",
            self.minimum_deployment_target,
            ("iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15"),
        )
        needs = self.compression.needs_targets if self.compression else None
        if needs and self.minimum_deployment_target not in needs:
            _bad(self.name, "minimum_deployment_target", f"{self.compression.label} needs {' or '.join(needs)}")


@dataclass(frozen=True)
class ONNXRecipe(ExportRecipe):
    exporter: str = "dynamo"  # dynamo (torch.onnx) | optimum (Hugging Face checkpoints)
    quantization: ONNXQuant | None = None
    ort_format: bool = False  # also write model.ort (onnxruntime mobile format)
    opset: int = 18

    def __post_init__(self):
        super().__post_init__()
        _choice(self.name, "exporter", self.exporter, ("dynamo", "optimum"))
        _kind(self.name, "quantization", self.quantization, ONNXQuant)


def recipe_from_dict(d: dict) -> Recipe:
    """Rebuild a recipe from ``to_dict()`` output (e.g. a manifest's ``recipe`` field): a single-program
    ``ExportRecipe`` or an LM program recipe (exporters/llm/recipes.py)."""
    from .llm import recipes as lm_recipes  # registers the LM recipe types

    r = config_from_dict(d, "recipe")
    if not isinstance(r, Recipe):
        from projdeploy.errors import UnknownNameError

        known = [c.__name__ for c in (*ExportRecipe.__subclasses__(), *lm_recipes.LMProgramRecipe.__subclasses__())]
        raise UnknownNameError("recipe type", type(r).__name__, known)
    return r
