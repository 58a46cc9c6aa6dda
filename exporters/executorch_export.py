"""ExecuTorch exporter: torch.export -> (PT2E / torchao quantization) -> delegate lowering -> model.pte.

    projdeploy export --checkpoint runs/cls --format executorch --recipe xnnpack-int8 --task digits-cls --out out/et

One ``.pte`` holds the ``forward`` program as a method. Language-model tasks get the
LM program instead (``write_lm``: exporters/llm, KV cache inside the program). Quantization helpers live in exporters/et_quant.py. The
fraction of operators delegated to the backend is recorded per method.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Artifact, ExportError
from .et_backends import get_backend
from .format import Format
from .llm.recipes import LMRecipe, executorch_lm_recipes, is_lm_recipe
from .recipes import ExecuTorchRecipe, PT2EInt8Dynamic, Torchao8da4w
from .tolerance import FP16, FP32

MAIN_FILE = "model.pte"


def _recipes() -> list:
    R = ExecuTorchRecipe
    return [
        R("xnnpack-fp32", "executorch", description="XNNPACK delegate, float32", **FP32.as_fields()),
        R(
            "xnnpack-int8",
            "executorch",
            description="PT2E XNNPACK quantizer: int8 dynamic activations, int8 per-channel weights",
            quantization=PT2EInt8Dynamic(),
            sqnr_floor_db=20.0,
        ),
        R(
            "xnnpack-8da4w",
            "executorch",
            description="torchao 8-bit dynamic activations, 4-bit groupwise weights (group 32), XNNPACK",
            quantization=Torchao8da4w(group_size=32),
            sqnr_floor_db=12.0,
        ),
        R(
            "coreml-delegate",
            "executorch",
            description="Core ML delegate (fp16 compute); runs only on Apple devices",
            backend="coreml",
            **FP16.as_fields(),
        ),
        R(
            "qnn",
            "executorch",
            description="Qualcomm QNN delegate; needs the Qualcomm AI Engine SDK",
            backend="qnn",
            **FP16.as_fields(),
        ),
        R(
            "portable",
            "executorch",
            description="no delegate: portable kernels (fallback for any CPU)",
            backend="portable",
            **FP32.as_fields(),
        ),
    ]


COMPUTE_OPS = re.compile(r"^aten_(linear|mm|addmm|bmm|matmul|convolution|_scaled_dot_product\w*)_default$")


def delegation(edge, names) -> dict:
    """Per method and overall: delegated / total operator nodes (edge dialect, before emission).

    ``fraction`` counts every edge node (views and casts included); ``compute_fraction`` counts only
    the matmul-class nodes (linear, mm, bmm, addmm, matmul, convolution, SDPA), which carry the FLOPs.
    """
    from executorch.devtools.backend_debug import get_delegation_info

    per, tot = {}, {"d": 0, "n": 0, "cd": 0, "cn": 0}
    for name in names:
        info = get_delegation_info(edge.exported_program(name).graph_module)
        d, n = info.num_delegated_nodes, info.num_non_delegated_nodes
        ops = [b for t, b in info.delegation_by_operator.items() if COMPUTE_OPS.match(t)]
        cd, cn = sum(b.delegated for b in ops), sum(b.non_delegated for b in ops)
        per[name] = {
            "delegated_nodes": d,
            "non_delegated_nodes": n,
            "subgraphs": info.num_delegated_subgraphs,
            "fraction": d / max(d + n, 1),
            "compute_nodes": cd + cn,
            "compute_fraction": cd / max(cd + cn, 1),
        }
        for k, v in zip(("d", "n", "cd", "cn"), (d, n, cd, cn)):
            tot[k] += v
    return {
        "backend": None,
        "methods": per,
        "fraction": tot["d"] / max(tot["d"] + tot["n"], 1),
        "compute_fraction": tot["cd"] / max(tot["cd"] + tot["cn"], 1),
    }


def lower(programs, recipe: ExecuTorchRecipe, calibration) -> tuple[bytes, dict]:
    """(the .pte bytes, the delegation figures) for ``programs`` under ``recipe``."""
    import torch
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from .et_quant import quantized_module

    eps = {}
    with torch.no_grad():
        for p in programs:
            eps[p.name] = torch.export.export(quantized_module(p, recipe, calibration), p.example, strict=False)
    edge = to_edge_transform_and_lower(
        eps,
        partitioner=get_backend(recipe.backend).partitioners(recipe),
        compile_config=EdgeCompileConfig(_check_ir_validity=False),
    )
    deleg = {**delegation(edge, list(eps)), "backend": recipe.backend}
    return edge.to_executorch().buffer, deleg


class ExecuTorchRunner:
    """Runs a ``.pte`` through ``executorch.runtime``: ``run(method, [np arrays]) -> [np arrays]``."""

    def __init__(self, path, threads: int = 1):
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        if portable_lib._threadpool_get_thread_count() != threads:  # process-wide (XNNPACK, optimized kernels)
            portable_lib._unsafe_reset_threadpool(threads)
        self.path = Path(path)
        self.program = Runtime.get().load_program(str(self.path))
        self.methods = {}

    def run(self, program: str, inputs: list) -> list:
        import numpy as np
        import torch

        if program not in self.methods:
            names = sorted(self.program.method_names)
            if program not in names:
                raise ExportError(f"{self.path}: unknown program {program!r}; programs: {', '.join(names)}")
            self.methods[program] = self.program.load_method(program)
        outs = self.methods[program].execute([torch.as_tensor(np.ascontiguousarray(x)) for x in inputs])
        return [o.detach().numpy().copy() for o in outs]


class ExecuTorchFormat(
    Format,
    name="executorch",
    recipe_type=ExecuTorchRecipe,
    lm_recipe_type=LMRecipe,
    toolchain=("executorch",),
    dynamic=False,
):
    def recipe_missing(self, recipe):
        return None if is_lm_recipe(recipe) else get_backend(recipe.backend).missing(recipe)

    def write_lm(self, checkpoint, spec, recipe, out):
        from .llm.formats import write_executorch

        return write_executorch(checkpoint, spec, recipe, out)

    def open_lm_runner(self, artifact, threads):
        from .llm.formats import executorch_runner

        return executorch_runner(artifact, threads)

    def write(self, programs, recipe, out, calibration) -> Artifact:
        pte, deleg = lower(programs, recipe, calibration)
        (out / MAIN_FILE).write_bytes(pte)
        progs = {p.name: p.spec() for p in programs}
        return Artifact(out, self.name, recipe, MAIN_FILE, progs, validation={"delegation": deleg})

    def host_gap(self, recipe):
        if gap := self.missing():
            return gap
        if not get_backend(recipe.backend).runs_here:
            return f"the {recipe.backend} delegate's runtime is not on this machine"
        return None

    def open_runner(self, artifact, threads):
        return ExecuTorchRunner(artifact.main_path, threads)

    def simulate(self, model, recipe):
        """The float model, with float16 rounding where the delegate computes in fp16."""
        import copy

        from .coreml_sim import round_fp16

        if recipe.quantization is not None:
            raise ExportError(f"executorch/{recipe.name}: no PyTorch simulation of a quantized delegate")
        sim = copy.deepcopy(model).eval()
        if get_backend(recipe.backend).fp16:
            round_fp16(sim)
        return sim

    def runtime(self, recipe):
        b = get_backend(recipe.backend)
        return b.runtime, b.runtime_note

    def precision(self, recipe):
        from projdeploy.check.ops import PRECISIONS

        if is_lm_recipe(recipe):
            return recipe.lm_precision()
        if recipe.quantization is not None:
            return recipe.quantization.precision()
        if get_backend(recipe.backend).fp16:
            return PRECISIONS["fp16"], f"{recipe.backend} delegate computes in fp16"
        return PRECISIONS["fp32"], "float recipe"


FORMAT = ExecuTorchFormat(_recipes(), executorch_lm_recipes())
