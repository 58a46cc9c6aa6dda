"""ONNX exporter: torch.onnx (dynamo) or optimum, onnxruntime int8 quantization, optional .ort file.

    projdeploy export --checkpoint runs/cls --format onnx --recipe fp32 --task digits-cls --out out/onnx

Programs: one ``forward`` (``input_ids`` int64 (batch, T) -> ``logits`` float32),
batch dynamic; for language models the sequence length is dynamic too
(2..T) and the logits cover every position. ``optimum`` artifacts keep
optimum's input names (``input_ids``, ``attention_mask``, ``position_ids``);
the runner fills the last two (ones, 0..T-1) when they are not given.
"""

from __future__ import annotations

from pathlib import Path

from .base import Artifact, ExportError, ParityError, TensorSpec
from .format import Format, installed
from .llm.recipes import ONNXLMRecipe, is_lm_recipe, onnx_lm_recipes
from .recipes import ONNXRecipe, OrtInt8Dynamic, OrtInt8Static, OrtWeightOnly
from .tolerance import FP32

MAIN_FILE = "model.onnx"
ORT_FILE = "model.ort"


def _recipes() -> list:
    R = ONNXRecipe
    return [
        R("fp32", "onnx", description="torch.onnx dynamo export, float32", **FP32.as_fields()),
        R(
            "fp32-ort",
            "onnx",
            description="fp32 plus model.ort (onnxruntime mobile format)",
            **FP32.as_fields(),
            ort_format=True,
        ),
        R(
            "optimum-fp32",
            "onnx",
            description="optimum (Hugging Face) export, float32",
            **FP32.as_fields(),
            exporter="optimum",
        ),
        R(
            "int8-dynamic",
            "onnx",
            description="onnxruntime dynamic int8 (int8 weights, dynamic activations)",
            quantization=OrtInt8Dynamic(),
            sqnr_floor_db=20.0,
        ),
        R(
            "int8-weight-only",
            "onnx",
            description="onnxruntime MatMulNBits int8 weights (scale per 32 inputs), int8 embeddings, float activations",
            quantization=OrtWeightOnly(bits=8, block_size=32, embeddings="int8"),
            sqnr_floor_db=20.0,
        ),
        R(
            "int4-weight-only",
            "onnx",
            description="onnxruntime MatMulNBits int4 weights (HQQ, block 32), int8 embeddings, float activations",
            quantization=OrtWeightOnly(bits=4, block_size=32, algorithm="hqq", embeddings="int8"),
            sqnr_floor_db=12.0,
        ),
        R(
            "int8-static",
            "onnx",
            description="onnxruntime static int8 QDQ, calibrated on the task's train split",
            quantization=OrtInt8Static(),
            sqnr_floor_db=20.0,
        ),
    ]


def _dynamo_export(program, path: Path, opset: int) -> None:
    import torch

    with torch.no_grad():
        torch.onnx.export(
            program.module,
            program.example,
            str(path),
            dynamo=True,
            input_names=[t.name for t in program.inputs],
            output_names=[t.name for t in program.outputs],
            dynamic_shapes=program.dynamic,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    strip_debug_metadata(path)


def strip_debug_metadata(path: Path) -> int:
    """Drop per-node debug metadata (torch.onnx stores stack traces, FX names and class paths on every
    node: about a third of a small int8 model's bytes, and source paths nobody should ship). Keeps each
    node's module scope (``pkg.torch.onnx.name_scopes``, module names only), which
    exporters/localize.py reads to find where an error starts. Returns bytes saved."""
    import onnx

    from .localize import SCOPES_KEY

    model = onnx.load(str(path))
    before = model.ByteSize()
    graphs = [model.graph] + [a.g for n in model.graph.node for a in n.attribute if a.type == a.GRAPH]
    nodes = [n for g in graphs for n in g.node] + [n for f in model.functions for n in f.node]
    for n in nodes:
        keep = [(p.key, p.value) for p in n.metadata_props if p.key == SCOPES_KEY]
        del n.metadata_props[:]
        for k, v in keep:
            n.metadata_props.add(key=k, value=v)
        n.doc_string = ""
    onnx.save(model, str(path))
    return before - model.ByteSize()


def _optimum_export(checkpoint_dir: Path, kind: str, out_dir: Path) -> None:
    import shutil
    import tempfile

    from optimum.exporters.onnx import main_export

    tmp = Path(tempfile.mkdtemp(prefix="optimum-", dir=out_dir.parent))
    try:
        main_export(
            str(checkpoint_dir),
            output=str(tmp),
            task="text-generation" if kind == "lm" else "text-classification",
            no_post_process=True,
            local_files_only=True,
            do_validation=False,
        )
        shutil.move(str(tmp / MAIN_FILE), str(out_dir / MAIN_FILE))
        for extra in tmp.glob("model.onnx_data*"):
            shutil.move(str(extra), str(out_dir / extra.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _session(path: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _specs(values) -> list:
    from onnx import TensorProto, helper

    out = []
    for v in values:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        out.append(
            TensorSpec(
                v.name,
                tuple(dims),
                helper.tensor_dtype_to_np_dtype(t.elem_type).name
                if t.elem_type != TensorProto.UNDEFINED
                else "unknown",
            )
        )
    return out


def graph_io(path: Path) -> dict:
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return {"inputs": _specs([i for i in g.input if i.name not in inits]), "outputs": _specs(g.output)}


def write_ort(onnx_path: Path, ort_path: Path) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(ort_path)
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.log_severity_level = 3
    ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])


def write_model(programs, recipe: ONNXRecipe, out_dir: Path, calibration) -> None:
    """``model.onnx`` (quantized in place of the float file when the recipe says so) and ``model.ort``."""
    from .onnx_quant import quantize

    prog = programs[0]
    float_path = out_dir / ("model.fp32.onnx" if recipe.quantization is not None else MAIN_FILE)
    if recipe.exporter == "optimum":
        if prog.source is None:
            raise ExportError(
                f"recipe {recipe.name!r} exports a Hugging Face checkpoint directory; use export_checkpoint()"
            )
        _optimum_export(Path(prog.source), prog.kind, out_dir)
    else:
        _dynamo_export(prog, float_path, recipe.opset)
    if recipe.quantization is not None:
        quantize(float_path, out_dir / MAIN_FILE, recipe, calibration)
        float_path.unlink()
        strip_debug_metadata(out_dir / MAIN_FILE)
    if recipe.ort_format:
        write_ort(out_dir / MAIN_FILE, out_dir / ORT_FILE)


class ONNXRunner:
    """Runs ``model.onnx`` / ``model.ort`` with onnxruntime (CPU). ``run("forward", [input_ids, ...])``."""

    def __init__(self, path, threads: int = 1):
        self.path = Path(path)
        self.session = _session(self.path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, program: str, inputs: list) -> list:
        if program != "forward":
            raise ExportError(f"{self.path}: unknown program {program!r}; programs: forward")
        return self.session.run(self.output_names, feed_for(self.input_names, inputs, self.path))


def feed_for(input_names: list, inputs: list, where) -> dict:
    """An onnxruntime feed: ``inputs`` in order (``input_ids`` first), then the optional Hugging Face
    inputs of optimum exports derived from ``input_ids`` (all-ones mask, positions 0..T-1, type 0)."""
    import numpy as np

    feed = dict(zip(input_names, inputs))
    ids = np.asarray(inputs[0])
    defaults = {
        "attention_mask": lambda: np.ones_like(ids),
        "position_ids": lambda: np.broadcast_to(np.arange(ids.shape[1]), ids.shape).copy(),
        "token_type_ids": lambda: np.zeros_like(ids),
    }
    for name in input_names:
        if name not in feed:
            if name not in defaults:
                raise ExportError(f"{where}: input {name!r} not given; inputs: {input_names}")
            feed[name] = defaults[name]().astype(np.int64)
    return feed


class ONNXFormat(
    Format,
    name="onnx",
    recipe_type=ONNXRecipe,
    lm_recipe_type=ONNXLMRecipe,
    toolchain=("onnx", "onnxscript", "onnxruntime"),
    dynamic=True,
    split_ext=".onnx",  # programs may be one .onnx each
    parsable_graph=True,  # check costs the .onnx graph itself, initializers included
):
    def recipe_missing(self, recipe):
        if (is_lm_recipe(recipe) or recipe.exporter == "optimum") and not installed("optimum.exporters.onnx"):
            return f"recipe {recipe.name!r} needs optimum[onnx] (optimum-onnx), not available on this machine"
        return None

    def write(self, programs, recipe, out, calibration) -> Artifact:
        """``model.onnx`` (+ ``model.ort``) for the single ``forward`` program."""
        write_model(programs, recipe, out, calibration)
        return Artifact(out, self.name, recipe, MAIN_FILE, {"forward": graph_io(out / MAIN_FILE)})

    def write_lm(self, checkpoint, spec, recipe, out):
        from .llm.formats import write_onnx

        return write_onnx(checkpoint, spec, recipe, out)

    def open_lm_runner(self, artifact, threads):
        from .llm.formats import onnx_runner

        return onnx_runner(artifact, threads)

    def extra_validation(self, artifact, call, task) -> dict:
        return {"ort": ort_parity(artifact.path, call, task)} if artifact.recipe.ort_format else {}

    def localizer(self, artifact, model):
        """Module outputs against the artifact's own intermediate values in onnxruntime."""
        from .localize import localize_onnx

        return lambda inputs: localize_onnx(artifact.main_path, model, inputs, artifact.recipe)

    def host_gap(self, recipe):
        return None if installed("onnxruntime") else "onnxruntime is not installed on this machine"

    def open_runner(self, artifact, threads):
        return ONNXRunner(artifact.main_path, threads)

    def runtime(self, recipe):
        return "onnxruntime-cpu", "ONNX -> ONNX Runtime CPU"

    def precision(self, recipe):
        from projdeploy.check.ops import PRECISIONS

        if is_lm_recipe(recipe):
            return recipe.lm_precision()
        if recipe.quantization is not None:
            return recipe.quantization.precision()
        return PRECISIONS["fp32"], "float recipe"


def ort_parity(directory, call, task, rows: int = 16) -> dict:
    """The .ort file must give the .onnx file's outputs (same graph, mobile format)."""
    import numpy as np

    from .validate import eval_inputs, runtime_outputs

    x = eval_inputs(task, rows)
    a = runtime_outputs(call, "forward", x)
    b = runtime_outputs(ONNXRunner(Path(directory) / ORT_FILE).run, "forward", x)
    fig = {"file": ORT_FILE, "rows": len(x), "max_abs_diff_vs_onnx": float(np.max(np.abs(a - b)))}
    if fig["max_abs_diff_vs_onnx"] > 1e-4:
        raise ParityError(f"{ORT_FILE} does not match model.onnx", fig)
    return fig


FORMAT = ONNXFormat(_recipes(), onnx_lm_recipes())
