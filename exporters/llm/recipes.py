"""LM program recipes: frozen, versioned ``Recipe`` configs of each format that has an LM program.

    projdeploy export --list-recipes

An LM program is ``forward(tokens, input_pos) -> logits`` of the last token with the KV cache kept
between calls (docs/lm-programs.md). Its recipes are registered like every other recipe
(``exporters.config``: ``to_dict`` / ``recipe_from_dict`` round-trip, versioned) and held by their
:class:`~exporters.format.Format` beside the single-program recipes (``Format.lm_recipes``).

- ExecuTorch (:class:`LMRecipe`): ``linear`` ``none`` (fp32) | ``8da8w`` (int8 per-channel weights) |
  ``8da4w`` (int4 weights in groups of ``group_size`` input columns), both with int8 dynamic per-token
  activations (torchao ``Int8DynamicActivationIntxWeightConfig``), lowered to XNNPACK; ``int4_offsets``
  keeps min/max int4 groups with their float offsets (exporters/llm/offset_int4.py);
  ``embedding_bits`` ``None`` (fp32) | 8 | 4, weight-only (torchao ``IntxWeightOnlyConfig``, per row
  when ``embedding_group_size`` is 0, else groups).
- ONNX (:class:`ONNXLMRecipe`): Optimum's decoder-with-past graph, optionally quantized by an
  onnxruntime config (exporters/onnx_quant.py).
- Core ML (:class:`CoreMLLMRecipe`): a stateful fp16 multifunction package (iOS 18); converts only here.

Every LM recipe has ``max_seq_len`` (the window: prompt + generated tokens; ``None`` = the task's row
length) and the validation floors ``min_top1_agreement`` and ``max_bpb_drop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..base import Recipe
from ..recipes import ONNXQuant, OrtInt8Static, _kind

LINEAR = ("none", "8da8w", "8da4w")


def _bad(name: str, field: str, problem: str):
    from projdeploy.errors import ConfigError

    raise ConfigError(f"LM recipe {name!r}", field, problem)


def _precision(name: str, weight_bytes: float, compute: str):
    from projdeploy.check.ops import Precision

    return Precision(name, weight_bytes, 4.0, compute)


@dataclass(frozen=True)
class LMProgramRecipe(Recipe):
    """Base of every LM program recipe (the fields validation and the window need)."""

    max_seq_len: int | None = None  # the window; None = the task's row length
    min_top1_agreement: float = 0.99  # validation: greedy-token agreement with the float model
    max_bpb_drop: float | None = None  # validation: bits/byte (or bits/token) budget; None = not judged

    def __post_init__(self):
        if self.max_seq_len is not None and self.max_seq_len < 2:
            _bad(self.name, "max_seq_len", "must be >= 2")
        if not 0.0 <= self.min_top1_agreement <= 1.0:
            _bad(self.name, "min_top1_agreement", "must be in [0, 1]")

    @property
    def quantized(self) -> bool:
        return False

    def lm_precision(self):
        """(projdeploy.check.ops.Precision, reason) for the device estimator."""
        from projdeploy.check.ops import PRECISIONS

        return PRECISIONS["fp32"], "float LM program"

    @classmethod
    def from_dict(cls, d: dict):
        from ..config import config_from_dict

        r = config_from_dict({"type": cls.__name__, **{k: v for k, v in d.items() if k != "type"}}, "LM recipe")
        return r


@dataclass(frozen=True)
class LMRecipe(LMProgramRecipe):
    """ExecuTorch LM program (XNNPACK, KV cache as mutable buffers; exporters/llm/et_program.py)."""

    format: str = "executorch"
    linear: str = "none"
    group_size: int = 32  # 8da4w: input columns per int4 scale
    embedding_bits: int | None = None
    embedding_group_size: int = 0  # 0 = one scale per row
    int4_offsets: bool = False  # 8da4w: min/max groups with a float offset (exporters/llm/offset_int4.py)
    backend: ClassVar[str] = "xnnpack"  # the ExecuTorch delegate (exporters.et_backends)

    def __post_init__(self):
        super().__post_init__()
        if self.linear not in LINEAR:
            _bad(self.name, "linear", f"{self.linear!r} is not one of {', '.join(LINEAR)}")
        if self.linear == "8da4w" and (self.group_size <= 0 or self.group_size % 16):
            _bad(self.name, "group_size", f"{self.group_size}: must be a positive multiple of 16")
        if self.embedding_bits not in (None, 4, 8):
            _bad(self.name, "embedding_bits", f"{self.embedding_bits!r} is not one of None, 4, 8")
        if self.embedding_group_size < 0:
            _bad(self.name, "embedding_group_size", "must be >= 0 (0 = per row)")
        if self.int4_offsets and self.linear != "8da4w":
            _bad(self.name, "int4_offsets", f"needs linear '8da4w', not {self.linear!r}")

    @property
    def quantized(self) -> bool:
        return self.linear != "none" or self.embedding_bits is not None

    def lm_precision(self):
        if self.linear == "8da4w":
            g = self.group_size
            if self.int4_offsets:  # + an int8 offset per group
                return _precision("int4", 0.5 + 3 / g, "int4"), f"8da4w, min/max groups of {g} with offsets"
            return _precision("int4", 0.5 + 2 / g, "int4"), f"8da4w (4-bit weights, group {g}, int8 dynamic act.)"
        if self.linear == "8da8w":
            return _precision("int8-dynamic", 1.0, "int8"), "8da8w (int8 weights, int8 dynamic activations)"
        return super().lm_precision()


@dataclass(frozen=True)
class ONNXLMRecipe(LMProgramRecipe):
    """ONNX decoder with past (Optimum ``text-generation-with-past``), the cache bound by ORT IO binding."""

    format: str = "onnx"
    quantization: ONNXQuant | None = None
    opset: int = 18

    def __post_init__(self):
        super().__post_init__()
        _kind(self.name, "quantization", self.quantization, ONNXQuant)
        if isinstance(self.quantization, OrtInt8Static):
            _bad(self.name, "quantization", "OrtInt8Static needs calibration feeds of every past length; not supported")

    @property
    def quantized(self) -> bool:
        return self.quantization is not None

    @property
    def keep_float(self) -> tuple:
        return getattr(self.quantization, "keep_float", ())

    def lm_precision(self):
        return self.quantization.precision() if self.quantization is not None else super().lm_precision()


@dataclass(frozen=True)
class CoreMLLMRecipe(LMProgramRecipe):
    """Core ML stateful KV cache (``ct.StateType``, iOS 18): ``prefill`` + ``decode`` functions, fp16."""

    format: str = "coreml"
    prefill_len: int = 32  # static prompt length of the prefill function (shorter prompts are padded)
    compute_units: str = "ALL"

    def __post_init__(self):
        super().__post_init__()
        if self.prefill_len < 1:
            _bad(self.name, "prefill_len", "must be >= 1")

    def lm_precision(self):
        from projdeploy.check.ops import PRECISIONS

        return PRECISIONS["fp16"], "Core ML fp16 (states and compute)"


def is_lm_recipe(recipe) -> bool:
    return isinstance(recipe, LMProgramRecipe)


def executorch_lm_recipes() -> list[LMRecipe]:
    return [
        LMRecipe("xnnpack-fp32", description="fp32, XNNPACK, KV cache in the program", min_top1_agreement=0.99),
        LMRecipe(
            "xnnpack-int8",
            description="int8 per-channel weights + int8 dynamic activations (torchao 8da8w), 8-bit embeddings",
            linear="8da8w",
            embedding_bits=8,
            min_top1_agreement=0.9,
        ),
        LMRecipe(
            "xnnpack-8da4w",
            description="int4 groupwise weights (group 32) + int8 dynamic activations, 8-bit embeddings",
            linear="8da4w",
            group_size=32,
            embedding_bits=8,
            min_top1_agreement=0.8,
        ),
        LMRecipe(
            "xnnpack-8da4w-offsets",
            description="as xnnpack-8da4w with min/max int4 groups and their float offsets (exact for GGUF Q4_1)",
            linear="8da4w",
            group_size=32,
            embedding_bits=8,
            int4_offsets=True,
            min_top1_agreement=0.8,
        ),
        LMRecipe(
            "xnnpack-8da4w-emb4",
            description="as xnnpack-8da4w with 4-bit embeddings (groups of 32)",
            linear="8da4w",
            group_size=32,
            embedding_bits=4,
            embedding_group_size=32,
            min_top1_agreement=0.8,
        ),
    ]


def onnx_lm_recipes() -> list[ONNXLMRecipe]:
    from ..recipes import OrtInt8Dynamic

    return [
        ONNXLMRecipe("fp32", description="decoder with past, fp32, cache bound through ORT IO binding"),
        ONNXLMRecipe(
            "int8-dynamic",
            description="decoder with past, int8 per-channel MatMul weights, int8 dynamic activations",
            quantization=OrtInt8Dynamic(),
            min_top1_agreement=0.9,
        ),
    ]


def coreml_lm_recipes() -> list[CoreMLLMRecipe]:
    return [CoreMLLMRecipe("fp16", description="stateful KV cache (iOS 18), prefill + decode functions, fp16")]


LM_RECIPES = {r.name: r for r in executorch_lm_recipes()}  # the ExecuTorch ones (export_lm's default format)


def get_lm_recipe(name) -> LMRecipe:
    """An ExecuTorch LM recipe by name (an LM recipe object passes through)."""
    if isinstance(name, LMProgramRecipe):
        return name
    if name not in LM_RECIPES:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError("LM recipe", name, LM_RECIPES)
    return LM_RECIPES[name]
