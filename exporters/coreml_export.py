"""Core ML exporter: torch.export -> coremltools (mlprogram) -> weight compression -> <program>.mlpackage.

    projdeploy export --checkpoint runs/cls --format coreml --recipe int8-linear --task digits-cls --out out/cml

One ``.mlpackage`` per program (``forward``); language-model tasks get the stateful LM
package instead (``write_lm``: exporters/llm/coreml_program.py). Core ML takes ``input_ids``/``input_pos`` as int32. Predictions need macOS: on Linux
the package is converted, saved, and its spec reloaded with
``skip_model_load=True``; parity and the task metric come from the same
compression applied in PyTorch (exporters/coreml_sim.py), flagged
``simulated``. On macOS the runner predicts with the real package.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .base import Artifact, ExportError, TensorSpec
from .config import HandlerTable
from .format import Format
from .llm.recipes import CoreMLLMRecipe, coreml_lm_recipes, is_lm_recipe
from .recipes import CoreMLInt4Block, CoreMLInt8Linear, CoreMLPalettize, CoreMLRecipe
from .tolerance import FP16


def _recipes() -> list:
    R = CoreMLRecipe
    return [
        R("fp16", "coreml", description="float16 compute and weights", **FP16.as_fields()),
        R(
            "int8-linear",
            "coreml",
            description="int8 linear (symmetric, per-channel) weight quantization",
            compression=CoreMLInt8Linear(),
            sqnr_floor_db=20.0,
        ),
        R(
            "palettize-4bit",
            "coreml",
            description="4-bit k-means palettization (per-tensor LUT)",
            compression=CoreMLPalettize(nbits=4),
            sqnr_floor_db=12.0,
        ),
        R(
            "palettize-6bit",
            "coreml",
            description="6-bit k-means palettization (per-tensor LUT)",
            compression=CoreMLPalettize(nbits=6),
            sqnr_floor_db=15.0,
        ),
        R(
            "int4-block",
            "coreml",
            description="int4 symmetric weights, one scale per 32 inputs (iOS18)",
            compression=CoreMLInt4Block(block_size=32),
            minimum_deployment_target="iOS18",
            sqnr_floor_db=12.0,
        ),
    ]


# config type -> (coremltools op config, the coremltools.optimize.coreml function applying it)
COMPRESSORS = HandlerTable("Core ML compression config")


@COMPRESSORS.register(CoreMLInt8Linear)
def _int8_linear(config, threshold: int):
    import coremltools.optimize.coreml as cto

    op = cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=threshold
    )
    return op, cto.linear_quantize_weights


@COMPRESSORS.register(CoreMLInt4Block)
def _int4_block(config, threshold: int):
    import coremltools.optimize.coreml as cto

    op = cto.OpLinearQuantizerConfig(
        mode="linear_symmetric",
        dtype="int4",
        granularity="per_block",
        block_size=config.block_size,
        weight_threshold=threshold,
    )
    return op, cto.linear_quantize_weights


@COMPRESSORS.register(CoreMLPalettize)
def _palettize(config, threshold: int):
    import coremltools.optimize.coreml as cto

    op = cto.OpPalettizerConfig(mode="kmeans", nbits=config.nbits, granularity="per_tensor", weight_threshold=threshold)
    return op, cto.palettize_weights


WEIGHT_OPS = ("linear", "matmul", "conv", "gather")


def compress(mlmodel, recipe: CoreMLRecipe):
    if recipe.compression is None:
        return mlmodel
    import coremltools.optimize.coreml as cto

    # Compress the weights of weight-bearing ops only. A global config would also compress other
    # large constants, such as the attention's additive causal mask (-inf entries break k-means).
    op, apply = COMPRESSORS(recipe.compression, recipe.weight_threshold)
    return apply(mlmodel, cto.OptimizationConfig(op_type_configs={t: op for t in WEIGHT_OPS}))


def convert_program(program, recipe: CoreMLRecipe):
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars
    import coremltools as ct
    import torch

    with torch.no_grad():
        ep = torch.export.export(program.module, program.example, strict=False).run_decompositions({})
    mlmodel = ct.convert(
        ep,
        convert_to="mlprogram",
        minimum_deployment_target=getattr(ct.target, recipe.minimum_deployment_target),
        compute_units=getattr(ct.ComputeUnit, recipe.compute_units),
        compute_precision=ct.precision.FLOAT16 if recipe.precision == "fp16" else ct.precision.FLOAT32,
    )
    spec = mlmodel.get_spec()
    for old, new in zip([o.name for o in spec.description.output], [t.name for t in program.outputs]):
        if old != new:
            ct.utils.rename_feature(spec, old, new)
    for old, new in zip([i.name for i in spec.description.input], [t.name for t in program.inputs]):
        if old != new:
            ct.utils.rename_feature(spec, old, new)
    mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    return compress(mlmodel, recipe)


_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64"}


def _io(desc) -> dict:
    def one(f):
        a = f.type.multiArrayType
        return TensorSpec(f.name, tuple(int(d) for d in a.shape), _DTYPES.get(a.dataType, str(a.dataType)))

    return {"inputs": [one(f) for f in desc.input], "outputs": [one(f) for f in desc.output]}


def spec_io(package: Path) -> dict:
    """Reload the saved package's spec (no model load) and read its I/O names, shapes and dtypes."""
    import coremltools as ct

    return _io(ct.models.MLModel(str(package), skip_model_load=True).get_spec().description)


def functions_io(package: Path) -> dict:
    """``{function: {inputs, outputs}}`` of a multifunction package (states are not I/O)."""
    import coremltools as ct

    desc = ct.models.MLModel(str(package), skip_model_load=True).get_spec().description
    return {f.name: _io(f) for f in desc.functions}


class CoreMLRunner:  # pragma: no cover - macOS only
    """Predicts with the real packages (macOS): ``run(program, [np arrays]) -> [np arrays]``."""

    def __init__(self, artifact_dir, programs: dict, compute_units: str = "ALL"):  # programs: name -> specs
        import coremltools as ct

        self.dir, self.programs = Path(artifact_dir), programs
        self.models = {
            n: ct.models.MLModel(str(self.dir / f"{n}.mlpackage"), compute_units=getattr(ct.ComputeUnit, compute_units))
            for n in programs
        }

    def run(self, program: str, inputs: list) -> list:
        import numpy as np

        if program not in self.models:
            raise ExportError(f"{self.dir}: unknown program {program!r}; programs: {', '.join(self.models)}")
        io = self.programs[program]
        feed = {
            t.name: np.asarray(x).astype(np.int32 if np.asarray(x).dtype.kind == "i" else np.float32)
            for t, x in zip(io["inputs"], inputs)
        }
        out = self.models[program].predict(feed)
        return [np.asarray(out[t.name], np.float32) for t in io["outputs"]]


class CoreMLFormat(
    Format,
    name="coreml",
    recipe_type=CoreMLRecipe,
    lm_recipe_type=CoreMLLMRecipe,
    toolchain=("coremltools",),
    dynamic=False,
    boundary_dtypes=frozenset({"float16"}),  # Core ML computes and returns float16; the SDKs convert
    split_ext=".mlpackage",
    split_always=True,  # one .mlpackage per program
):
    def write(self, programs, recipe, out, calibration) -> Artifact:
        """``<program>.mlpackage`` for each program (Core ML compression needs no calibration)."""
        specs = {}
        for p in programs:
            pkg = out / f"{p.name}.mlpackage"
            convert_program(p, recipe).save(str(pkg))
            specs[p.name] = spec_io(pkg)
        return Artifact(out, self.name, recipe, f"{programs[0].name}.mlpackage", specs)

    def write_lm(self, checkpoint, spec, recipe, out):
        from .llm.formats import write_coreml

        return write_coreml(checkpoint, spec, recipe, out)

    def host_gap(self, recipe):
        if sys.platform != "darwin":
            return "Core ML predictions need macOS (coremltools has no runtime on Linux)"
        return None

    def open_runner(self, artifact, threads):  # pragma: no cover - macOS only; Core ML picks its own threads
        return CoreMLRunner(artifact.path, artifact.programs, artifact.recipe.compute_units)

    def simulate(self, model, recipe):
        from .coreml_sim import simulate

        return simulate(model, recipe)

    def runtime(self, recipe):
        return "coreml", "Core ML"

    def precision(self, recipe):
        from projdeploy.check.ops import PRECISIONS

        if is_lm_recipe(recipe):
            return recipe.lm_precision()
        if recipe.compression is None:
            return PRECISIONS[recipe.precision], f"Core ML {recipe.precision}"
        return recipe.compression.precision(recipe.precision)


FORMAT = CoreMLFormat(_recipes(), coreml_lm_recipes())
