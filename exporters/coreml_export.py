"""Core ML exporter: torch.export -> coremltools (mlprogram) -> weight compression -> <program>.mlpackage.

    projdeploy export --checkpoint runs/cls --format coreml --recipe int8-linear --task digits-cls --out out/cml

One ``.mlpackage`` per program (``forward``; for language models ``prefill``
and ``decode`` with the static KV cache of exporters/programs.py). Core ML
takes ``input_ids``/``input_pos`` as int32. Predictions need macOS: on Linux
the package is converted, saved, and its spec reloaded with
``skip_model_load=True``; parity and the task metric come from the same
compression applied in PyTorch (exporters/coreml_sim.py), flagged
``simulated``. On macOS the runner predicts with the real package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .base import Artifact, ExportError, TensorSpec, UnavailableError
from .recipes import CoreMLRecipe

FORMAT = "coreml"
KV_CACHE = True
DYNAMIC = False

_Q = dict(sqnr_floor_db=20.0)
RECIPES = {
    r.name: r
    for r in [
        CoreMLRecipe("fp16", FORMAT, description="float16 compute and weights", atol=5e-2),
        CoreMLRecipe(
            "int8-linear",
            FORMAT,
            description="int8 linear (symmetric, per-channel) weight quantization",
            compression="int8-linear",
            nbits=8,
            **_Q,
        ),
        CoreMLRecipe(
            "palettize-4bit",
            FORMAT,
            description="4-bit k-means palettization (per-tensor LUT)",
            compression="palettize",
            nbits=4,
            sqnr_floor_db=12.0,
        ),
        CoreMLRecipe(
            "palettize-6bit",
            FORMAT,
            description="6-bit k-means palettization (per-tensor LUT)",
            compression="palettize",
            nbits=6,
            sqnr_floor_db=15.0,
        ),
        CoreMLRecipe(
            "int4-block",
            FORMAT,
            description="int4 symmetric weights, one scale per 32 inputs (iOS18)",
            compression="int4-block",
            nbits=4,
            block_size=32,
            minimum_deployment_target="iOS18",
            sqnr_floor_db=12.0,
        ),
    ]
}


def is_available() -> bool:
    return importlib.util.find_spec("coremltools") is not None


def check_available(recipe: CoreMLRecipe) -> None:
    if not is_available():
        raise UnavailableError("Core ML export needs coremltools, which is not installed on this machine")


def _op_config(recipe: CoreMLRecipe):
    import coremltools.optimize.coreml as cto

    t = recipe.weight_threshold
    if recipe.compression == "int8-linear":
        return cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=t
        )
    if recipe.compression == "int4-block":
        return cto.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype="int4",
            granularity="per_block",
            block_size=recipe.block_size,
            weight_threshold=t,
        )
    return cto.OpPalettizerConfig(mode="kmeans", nbits=recipe.nbits, granularity="per_tensor", weight_threshold=t)


WEIGHT_OPS = ("linear", "matmul", "conv", "gather")


def compress(mlmodel, recipe: CoreMLRecipe):
    if recipe.compression == "none":
        return mlmodel
    import coremltools.optimize.coreml as cto

    # Compress the weights of weight-bearing ops only. A global config would also compress other
    # large constants, such as the attention's additive causal mask (-inf entries break k-means).
    op = _op_config(recipe)
    config = cto.OptimizationConfig(op_type_configs={t: op for t in WEIGHT_OPS})
    if recipe.compression == "palettize":
        return cto.palettize_weights(mlmodel, config)
    return cto.linear_quantize_weights(mlmodel, config)


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


def spec_io(package: Path) -> dict:
    """Reload the saved package's spec (no model load) and read its I/O names, shapes and dtypes."""
    import coremltools as ct

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()

    def one(f):
        a = f.type.multiArrayType
        return TensorSpec(f.name, tuple(int(d) for d in a.shape), _DTYPES.get(a.dataType, str(a.dataType)))

    return {"inputs": [one(f) for f in spec.description.input], "outputs": [one(f) for f in spec.description.output]}


def export(model, example_inputs, recipe: CoreMLRecipe, out_dir, programs=None, kind: str = "cls", **_) -> Artifact:
    """Write ``<program>.mlpackage`` for each program into ``out_dir``; returns the Artifact."""
    check_available(recipe)
    out_dir = Path(out_dir)
    if programs is None:
        from .programs import forward_program

        programs = [forward_program(model, kind, example_inputs.shape[1], example_inputs, 0)]
    specs = {}
    try:
        for p in programs:
            pkg = out_dir / f"{p.name}.mlpackage"
            convert_program(p, recipe).save(str(pkg))
            specs[p.name] = spec_io(pkg)
    except Exception as e:
        raise ExportError(f"Core ML export ({recipe.name}) failed: {type(e).__name__}: {e}") from e
    return Artifact(
        path=out_dir, format=FORMAT, recipe=recipe, main_file=f"{programs[0].name}.mlpackage", programs=specs
    )


class CoreMLRunner:  # pragma: no cover - macOS only
    """Predicts with the real packages (macOS): ``run(program, [np arrays]) -> [np arrays]``."""

    def __init__(self, artifact_dir, programs: dict, compute_units: str = "ALL"):
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
            t["name"] if isinstance(t, dict) else t.name: np.asarray(x).astype(
                np.int32 if np.asarray(x).dtype.kind == "i" else np.float32
            )
            for t, x in zip(io["inputs"], inputs)
        }
        out = self.models[program].predict(feed)
        return [np.asarray(out[t["name"] if isinstance(t, dict) else t.name], np.float32) for t in io["outputs"]]


def unavailable_reason() -> str | None:
    if sys.platform != "darwin":
        return "Core ML predictions need macOS (coremltools has no runtime on Linux)"
    return None


def runner_for_artifact(art: Artifact, **_):
    if unavailable_reason():
        return None
    return CoreMLRunner(art.path, art.programs, art.recipe.compute_units)  # pragma: no cover


def load_runner(artifact_dir, **_):
    from .base import read_manifest

    if unavailable_reason():
        return None
    m = read_manifest(artifact_dir)  # pragma: no cover - macOS only
    return CoreMLRunner(artifact_dir, m["programs"], m["recipe"].get("compute_units", "ALL"))
