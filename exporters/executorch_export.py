"""ExecuTorch exporter: torch.export -> (PT2E / torchao quantization) -> delegate lowering -> model.pte.

    projdeploy export --checkpoint runs/lm --format executorch --recipe xnnpack-int8 --task digits:0-4 --out out/et

One ``.pte`` holds every program as a method: ``forward`` for classifiers,
``prefill`` + ``decode`` (static KV cache, see exporters/programs.py) for
language models. Quantization helpers live in exporters/et_quant.py. The
fraction of operators delegated to the backend is recorded per method.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from .base import Artifact, ExportError, UnavailableError
from .recipes import ExecuTorchRecipe

FORMAT = "executorch"
KV_CACHE = True
DYNAMIC = False
MAIN_FILE = "model.pte"

RECIPES = {
    r.name: r
    for r in [
        ExecuTorchRecipe("xnnpack-fp32", FORMAT, description="XNNPACK delegate, float32", atol=1e-4),
        ExecuTorchRecipe(
            "xnnpack-int8",
            FORMAT,
            description="PT2E XNNPACK quantizer: int8 dynamic activations, int8 per-channel weights",
            quantization="int8-dynamic",
            sqnr_floor_db=20.0,
        ),
        ExecuTorchRecipe(
            "xnnpack-8da4w",
            FORMAT,
            description="torchao 8-bit dynamic activations, 4-bit groupwise weights (group 32), XNNPACK",
            quantization="8da4w",
            sqnr_floor_db=12.0,
        ),
        ExecuTorchRecipe(
            "coreml-delegate",
            FORMAT,
            description="Core ML delegate (fp16 compute); runs only on Apple devices",
            backend="coreml",
            atol=5e-2,
        ),
        ExecuTorchRecipe(
            "qnn",
            FORMAT,
            description="Qualcomm QNN delegate; needs the Qualcomm AI Engine SDK",
            backend="qnn",
            atol=5e-2,
        ),
        ExecuTorchRecipe(
            "portable",
            FORMAT,
            description="no delegate: portable kernels (fallback for any CPU)",
            backend="portable",
            atol=1e-4,
        ),
    ]
}


def is_available() -> bool:
    return importlib.util.find_spec("executorch") is not None


def check_available(recipe: ExecuTorchRecipe) -> None:
    if not is_available():
        raise UnavailableError("ExecuTorch is not installed on this machine (pip install executorch)")
    if recipe.backend == "coreml":
        try:
            from executorch.backends.apple.coreml.partition import CoreMLPartitioner  # noqa: F401
        except Exception as e:
            raise UnavailableError(
                f"recipe {recipe.name!r}: the Core ML delegate is not available on this "
                f"machine ({type(e).__name__}: {e})"
            ) from None
    if recipe.backend == "qnn":
        sdk = os.environ.get("QNN_SDK_ROOT")
        if not sdk or not Path(sdk).is_dir():
            raise UnavailableError(
                f"recipe {recipe.name!r}: the Qualcomm delegate is not available on this "
                "machine (lowering needs the Qualcomm AI Engine SDK; set QNN_SDK_ROOT)"
            )


def _partitioners(recipe: ExecuTorchRecipe) -> list:
    if recipe.backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackDynamicallyQuantizedPartitioner,
            XnnpackPartitioner,
        )

        if recipe.quantization == "int8-dynamic":
            # dynamically quantized linears first, per op (one merged partition can form a cycle), then fp32
            return [XnnpackDynamicallyQuantizedPartitioner(per_op_mode=True), XnnpackPartitioner()]
        return [XnnpackPartitioner()]
    if recipe.backend == "coreml":
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        return [CoreMLPartitioner()]
    if recipe.backend == "qnn":  # pragma: no cover - needs the Qualcomm SDK
        from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
        from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
        from executorch.backends.qualcomm.utils.utils import (
            generate_htp_compiler_spec,
            generate_qnn_executorch_compiler_spec,
        )

        spec = generate_qnn_executorch_compiler_spec(QcomChipset.SM8650, generate_htp_compiler_spec(use_fp16=True))
        return [QnnPartitioner(spec)]
    return []


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


def export(
    model, example_inputs, recipe: ExecuTorchRecipe, out_dir, programs=None, calibration=None, kind: str = "cls", **_
) -> Artifact:
    """Write ``model.pte`` into ``out_dir``; returns the Artifact (no manifest yet)."""
    import torch
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from .et_quant import quantized_module

    check_available(recipe)
    out_dir = Path(out_dir)
    if programs is None:
        from .programs import forward_program

        programs = [forward_program(model, kind, example_inputs.shape[1], example_inputs, 0)]
    try:
        eps = {}
        with torch.no_grad():
            for p in programs:
                mod = quantized_module(p, recipe, calibration)
                eps[p.name] = torch.export.export(mod, p.example, strict=False)
        edge = to_edge_transform_and_lower(
            eps, partitioner=_partitioners(recipe), compile_config=EdgeCompileConfig(_check_ir_validity=False)
        )
        deleg = delegation(edge, list(eps))
        deleg["backend"] = recipe.backend
        et = edge.to_executorch()
        (out_dir / MAIN_FILE).write_bytes(et.buffer)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"ExecuTorch export ({recipe.name}) failed: {type(e).__name__}: {e}") from e
    art = Artifact(
        path=out_dir, format=FORMAT, recipe=recipe, main_file=MAIN_FILE, programs={p.name: p.spec() for p in programs}
    )
    art.validation["delegation"] = deleg
    return art


class ExecuTorchRunner:
    """Runs a ``.pte`` through ``executorch.runtime``: ``run(method, [np arrays]) -> [np arrays]``."""

    def __init__(self, path):
        from executorch.runtime import Runtime

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


def runner_for(path, backend: str = "xnnpack"):
    """A host runner, or None where the delegate's runtime cannot run here (Core ML, QNN)."""
    if not is_available() or backend in ("coreml", "qnn"):
        return None
    return ExecuTorchRunner(path)


def load_runner(artifact_dir, **_):
    from .base import read_manifest

    m = read_manifest(artifact_dir)
    return runner_for(Path(artifact_dir) / m["main_file"], m["recipe"].get("backend", "xnnpack"))


def runner_for_artifact(art: Artifact, **_):
    return runner_for(art.main_path, art.recipe.backend)
