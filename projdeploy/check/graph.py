"""Operator lists of a real artifact: ONNX graph parsing, or a traced projdeploy model.

    python -c "from projdeploy.check.graph import artifact_graph; print(artifact_graph('out/cls-onnx').summary())"

ONNX: the real graph (onnx + shape inference); every node's FLOPs and bytes from its inferred
shapes and real dtypes. ExecuTorch ``.pte`` / Core ML: the operator list comes from running
``projdeploy.models.build_model`` (the manifest's HF config) under a dispatch trace that
records every aten operator, at the recipe's precision. In both paths weight bytes are scaled
so they sum to the real model file size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .ops import PRECISIONS, OpCost, Precision, TransformerShape, totals

# ONNX op types: FLOPs per output element (data movement ops: 0)
_EW = {
    "Add": 1,
    "Sub": 1,
    "Mul": 1,
    "Div": 1,
    "Neg": 1,
    "Sqrt": 1,
    "Reciprocal": 1,
    "Pow": 1,
    "Sigmoid": 4,
    "Tanh": 4,
    "Exp": 1,
    "Log": 1,
    "Erf": 4,
    "Cos": 1,
    "Sin": 1,
    "Relu": 1,
    "Max": 1,
    "Min": 1,
    "Where": 1,
    "Softmax": 5,
    "ReduceMean": 1,
    "ReduceSum": 1,
    "Cast": 0,
    "LayerNormalization": 8,
    "SimplifiedLayerNormalization": 4,
    "DynamicQuantizeLinear": 3,
    "QuantizeLinear": 2,
    "DequantizeLinear": 2,
    "Equal": 1,
    "Less": 1,
    "Greater": 1,
    "Not": 1,
    "And": 1,
    "Or": 1,
    "IsNaN": 1,
    "Clip": 1,
}
_FREE = {"Constant", "Shape", "Identity", "ConstantOfShape", "Size"}  # folded by runtimes: no dispatch
_ONNX_DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}


@dataclass
class Graph:
    path: str  # "onnx-graph" | "torch-dispatch-trace"
    programs: dict  # program -> list[OpCost]
    precision: Precision
    file_bytes: int
    raw_weight_bytes: float
    weight_scale: float
    notes: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "path": self.path,
            "precision": self.precision.name,
            "file_bytes": self.file_bytes,
            "weight_bytes_before_scaling": self.raw_weight_bytes,
            "weight_scale": self.weight_scale,
            "programs": {k: totals(v) for k, v in self.programs.items()},
            "notes": self.notes,
        }


def _format_and_recipe(manifest: dict):
    from exporters.recipes import recipe_from_dict
    from exporters.registry import get_format

    return get_format(manifest["format"]), recipe_from_dict(manifest.get("recipe", {}))


def precision_for(manifest: dict) -> tuple[Precision, str]:
    """(precision, reason) of an artifact: its format's reading of its recipe."""
    fmt, recipe = _format_and_recipe(manifest)
    return fmt.precision(recipe)


def runtime_for(manifest: dict) -> tuple[str, str]:
    """(profile runtime name, reason) for an artifact: its format's reading of its recipe."""
    fmt, recipe = _format_and_recipe(manifest)
    return fmt.runtime(recipe)


# --- ONNX ----------------------------------------------------------------------------
def _dims(t, sym: dict) -> list | None:
    if not t.type.HasField("tensor_type") or not t.type.tensor_type.HasField("shape"):
        return None
    out = []
    for d in t.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.dim_param in sym:
            out.append(sym[d.dim_param])
        else:
            return None
    return out


def onnx_ops(path: str | Path, sym: dict) -> tuple[list[OpCost], float, list]:
    """Per-node costs of an ONNX file. ``sym``: values for symbolic dims (e.g. batch=1, seq=64)."""
    import onnx
    from onnx import numpy_helper  # noqa: F401  (imported for side-effect free dtype helpers)

    model = onnx.load(str(path))
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - keep the shapes the exporter recorded
        pass
    g = model.graph
    inits = {i.name: (math.prod(i.dims), _ONNX_DTYPE_BYTES.get(i.data_type, 4)) for i in g.initializer}
    info = {}
    for v in list(g.value_info) + list(g.input) + list(g.output):
        info[v.name] = (_dims(v, sym), _ONNX_DTYPE_BYTES.get(v.type.tensor_type.elem_type, 4))
    for n, (_numel, b) in inits.items():
        info.setdefault(n, (None, b))
    unknown, ops = 0, []

    def numel(name):
        d = info.get(name, (None, 4))[0]
        if d is None and name in inits:
            return inits[name][0]
        return None if d is None else math.prod(d)

    def nbytes(name):
        n = numel(name)
        return 0.0 if n is None else n * info.get(name, (None, 4))[1]

    for i, node in enumerate(g.node):
        if node.op_type in _FREE:
            continue
        w = sum(inits[x][0] * inits[x][1] for x in node.input if x in inits)
        acts_in = sum(nbytes(x) for x in node.input if x and x not in inits)
        acts_out = sum(nbytes(x) for x in node.output)
        flops = 0.0
        out0 = numel(node.output[0]) if node.output else None
        if node.op_type in ("MatMul", "MatMulInteger", "Gemm", "FusedMatMul", "MatMulNBits", "QLinearMatMul"):
            a = info.get(node.input[0], (None,))[0]
            if a is None or out0 is None:
                unknown += 1
            else:
                k = (
                    a[-1]
                    if node.op_type != "Gemm" or not any(a.name == "transA" and a.i for a in node.attribute)
                    else a[0]
                )
                flops = 2.0 * out0 * k
        elif node.op_type == "Gather" and node.input[0] in inits:
            rows = numel(node.input[1]) or 1
            shape = [d for d in g.initializer if d.name == node.input[0]][0].dims
            w = rows * math.prod(shape[1:]) * inits[node.input[0]][1]
        elif node.op_type in _EW:
            flops = _EW[node.op_type] * (out0 or 0)
            unknown += out0 is None
        ops.append(
            OpCost(node.name or f"{node.op_type}_{i}", node.op_type, float(flops), float(w), float(acts_in + acts_out))
        )
    notes = [f"{unknown} ONNX node(s) without inferred shapes (FLOPs counted as 0)"] if unknown else []
    total_w = float(sum(n * b for n, b in inits.values()))
    return ops, total_w, notes


# --- traced projdeploy model ------------------------------------------------------------
def traced_ops(config: dict, seq_len: int, prec: Precision) -> tuple[list[OpCost], float]:
    """Run the model built from ``config`` on (1, seq_len) under a dispatch trace; one OpCost per aten op."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from ..models import ModelConfig, build_model

    cfg = ModelConfig.from_hf_dict(config, "manifest model.config")
    model = build_model(cfg, seed=0).eval()
    params = {p.data_ptr(): p for p in model.parameters()}
    ab = prec.act_bytes
    skip = {
        "aten.view",
        "aten._unsafe_view",
        "aten.t",
        "aten.transpose",
        "aten.expand",
        "aten.unsqueeze",
        "aten.detach",
        "aten.alias",
        "aten.slice",
        "aten.select",
        "aten.arange",
        "aten.lift_fresh",
        "aten._to_copy",
        "aten.empty",
        "aten.scalar_tensor",
        "aten.zeros",
        "aten.ones",
        "aten.split",
        "aten.split_with_sizes",
        "aten.reshape",
        "aten.permute",
        "aten.squeeze",
        "aten.clone",
    }
    ops: list[OpCost] = []

    def is_w(t):
        return isinstance(t, torch.Tensor) and t.data_ptr() in params and t.dim() >= 1

    class Trace(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = str(func.overloadpacket)
            if name in skip:
                return out
            tens = [a for a in args if isinstance(a, torch.Tensor)]
            outs = out if isinstance(out, (tuple, list)) else [out]
            outs = [o for o in outs if isinstance(o, torch.Tensor)]
            w = sum(t.numel() for t in tens if is_w(t) and t.dim() >= 2)
            wb = w * prec.weight_bytes + sum(t.numel() * 4 for t in tens if is_w(t) and t.dim() == 1)
            acts = (sum(t.numel() for t in tens if not is_w(t)) + sum(o.numel() for o in outs)) * ab
            on = sum(o.numel() for o in outs)
            if name in ("aten.mm", "aten.addmm", "aten.bmm", "aten.matmul", "aten.linear"):
                a = tens[-2] if name == "aten.addmm" else tens[0]
                flops = 2.0 * on * a.shape[-1]
            elif name == "aten.embedding":
                flops, wb = 0.0, on * prec.weight_bytes
            elif "scaled_dot_product" in name:
                q, k = tens[0], tens[1]
                flops = (
                    4.0 * q.numel() * k.shape[-2] / (2 if (kwargs or {}).get("is_causal") else 1)
                    + 5.0 * q.numel() / q.shape[-1] * k.shape[-2]
                )
            else:
                flops = float(on)
            ops.append(OpCost(name, name.split(".")[-1], flops, float(wb), float(acts)))
            return out

    ids = torch.zeros((1, seq_len), dtype=torch.int64)
    with torch.no_grad(), Trace():
        model(ids)
    seen = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel() * (prec.weight_bytes if p.dim() >= 2 else 4)
    return ops, float(sum(seen.values()))


def _scale(ops, factor):
    import dataclasses

    return [dataclasses.replace(o, weight_bytes=o.weight_bytes * factor) for o in ops]


def artifact_graph(artifact_dir: str | Path, manifest: dict | None = None) -> Graph:
    from exporters.base import read_manifest

    d = Path(artifact_dir)
    m = manifest or read_manifest(d)
    prec, why = precision_for(m)
    main = d / m["main_file"]
    file_bytes = (
        main.stat().st_size if main.is_file() else sum(f.stat().st_size for f in main.rglob("*") if f.is_file())
    )
    seq = int(m.get("model", {}).get("seq_len") or 0) or _seq_from_programs(m)
    notes = [f"precision: {why}"]
    if m["format"] == "onnx":
        ops, raw, n2 = onnx_ops(main, {"batch": 1, "seq": seq, "s0": 1, "s1": seq})
        notes += n2
        path, progs = "onnx-graph", {"forward": ops}
        if prec.name == "fp32" and any(
            o.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "DequantizeLinear") for o in ops
        ):
            prec = PRECISIONS["int8"]
    else:
        ops, raw = traced_ops(m["model"]["config"], seq, prec)
        path = "torch-dispatch-trace"
        progs = {"prefill" if "prefill" in m.get("programs", {}) else "forward": ops}
        notes.append(
            "operator list from projdeploy.models.build_model(manifest config) traced at the recipe's "
            "precision (the .pte/.mlpackage itself is not parsed)"
        )
    if m["format"] == "onnx":  # exact initializer bytes; the rest of the file is graph + metadata
        scale = 1.0
        notes.append(f"weights: {raw:.0f} initializer bytes of a {file_bytes} byte file (rest: graph, metadata)")
    else:  # the traced model approximates storage; scale to the real file
        scale = file_bytes / raw if raw > 0 else 1.0
        notes.append(f"weights scaled x{scale:.3f} to the real file size {file_bytes} bytes")
    return Graph(path, {k: _scale(v, scale) for k, v in progs.items()}, prec, file_bytes, raw, scale, notes)


def _seq_from_programs(m: dict) -> int:
    for prog in m.get("programs", {}).values():
        for t in prog.get("inputs", []):
            if t["name"] == "input_ids":
                last = t["shape"][-1]
                if isinstance(last, int) and last > 1:
                    return last
    return int(m.get("model", {}).get("config", {}).get("max_position_embeddings", 64))


def shape_of(manifest: dict) -> TransformerShape:
    return TransformerShape.from_hf(manifest["model"]["config"])
