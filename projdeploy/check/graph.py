"""Operator lists of a real artifact: ONNX graph parsing, or a traced projdeploy model.

    python -c "from projdeploy.check.graph import artifact_graph; print(artifact_graph('out/cls-onnx').summary())"

ONNX: the real graph (onnx + shape inference); every node's FLOPs and bytes from its inferred
shapes and real dtypes. ExecuTorch ``.pte`` / Core ML: the operator list comes from running
``projdeploy.models.build_model`` (the manifest's HF config) under a dispatch trace that
records every aten operator, at the recipe's precision. In both paths weight bytes are scaled
so they sum to the real model file size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .ops import PRECISIONS, OpCost, Precision, TransformerShape, totals


@dataclass
class Graph:
    path: str  # "onnx-graph" | "torch-dispatch-trace"
    programs: dict  # program -> list[OpCost]
    precision: Precision
    file_bytes: int
    raw_weight_bytes: float
    weight_scale: float
    notes: list = field(default_factory=list)
    uncosted: dict = field(default_factory=dict)  # op type -> count: FLOPs unknown (bytes only)
    act_peak_bytes: float | None = None  # live-tensor peak of the graph (ONNX), None = not computed

    def summary(self) -> dict:
        return {
            "path": self.path,
            "precision": self.precision.name,
            "file_bytes": self.file_bytes,
            "weight_bytes_before_scaling": self.raw_weight_bytes,
            "weight_scale": self.weight_scale,
            "programs": {k: totals(v) for k, v in self.programs.items()},
            "uncosted": dict(self.uncosted),
            "act_peak_bytes": self.act_peak_bytes,
            "notes": self.notes,
        }


def precision_for(art) -> tuple[Precision, str]:
    """(precision, reason) of an :class:`~exporters.base.Artifact`: its format's reading of its recipe."""
    from exporters.registry import get_format

    return get_format(art.format).precision(art.recipe)


def runtime_for(art) -> tuple[str, str]:
    """(profile runtime name, reason) for an :class:`~exporters.base.Artifact`: its format's reading of its recipe."""
    from exporters.registry import get_format

    return get_format(art.format).runtime(art.recipe)


# --- ONNX ----------------------------------------------------------------------------
def onnx_ops(path: str | Path, sym: dict):
    """Per-node costs of an ONNX file (``opcost.onnx_model_ops``). ``sym``: symbolic dims (batch=1, seq=64)."""
    import onnx

    from .opcost import onnx_model_ops

    return onnx_model_ops(onnx.load(str(path)), sym)


# --- traced projdeploy model ------------------------------------------------------------
def traced_ops(config: dict, seq_len: int, prec: Precision) -> tuple[list[OpCost], float]:
    """Run the model built from ``config`` on (1, seq_len) under a dispatch trace; one OpCost per aten op."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    model, run = _model_from_config(config, seq_len)
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

    with torch.no_grad(), Trace():
        run()
    seen = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel() * (prec.weight_bytes if p.dim() >= 2 else 4)
    return ops, float(sum(seen.values()))


def _model_from_config(config: dict, seq_len: int):
    """(random-weight model built from a manifest's config, a call that runs it once on a (1, seq_len) input).

    projdeploy's own families build as its Llama module; every other architecture the exporters take
    (``exporters/hf_models.py``: BERT, DistilBERT, MobileBERT, GPT-2, ViT) builds with ``transformers``."""
    import torch

    from ..models import ModelConfig, build_model
    from ..models.config import FAMILIES

    ids = torch.zeros((1, seq_len), dtype=torch.int64)
    if config.get("model_type") in FAMILIES:
        model = build_model(ModelConfig.from_hf_dict(config, "manifest model.config"), seed=0).eval()
        return model, lambda: model(ids)
    import transformers

    from exporters.hf_models import ARCHITECTURES

    from ..errors import CheckpointError

    arch = next((a for a in config.get("architectures") or [] if a in ARCHITECTURES), None)
    if arch is None or config.get("model_type") not in transformers.CONFIG_MAPPING:
        raise CheckpointError(
            f"manifest model.config: architecture {config.get('architectures') or config.get('model_type')!r} "
            f"cannot be costed; known: {', '.join(sorted(ARCHITECTURES))}"
        )
    torch.manual_seed(0)
    hf_cfg = transformers.CONFIG_MAPPING[config["model_type"]].from_dict(config)
    model = getattr(transformers, arch)._from_config(hf_cfg, attn_implementation="eager").eval()
    if ARCHITECTURES[arch].inputs == "image":
        size, ch = int(hf_cfg.image_size), int(hf_cfg.num_channels)
        pixels = torch.zeros((1, ch, size, size))
        return model, lambda: model(pixel_values=pixels)
    return model, lambda: model(input_ids=ids, attention_mask=torch.ones_like(ids))


def _scale(ops, factor):
    import dataclasses

    return [dataclasses.replace(o, weight_bytes=o.weight_bytes * factor) for o in ops]


def artifact_graph(artifact) -> Graph:
    """The operator costs of an artifact (an :class:`~exporters.base.Artifact` or its directory)."""
    from exporters.base import Artifact
    from exporters.registry import get_format

    art = artifact if isinstance(artifact, Artifact) else Artifact.read(artifact)
    lm_program = isinstance(art.model.get("lm"), dict)  # exporters/llm: cost the config's own decoder
    own_graph = get_format(art.format).parsable_graph and not lm_program
    prec, why = precision_for(art)
    main = art.main_path
    file_bytes = (
        main.stat().st_size if main.is_file() else sum(f.stat().st_size for f in main.rglob("*") if f.is_file())
    )
    seq = int(art.model.get("seq_len") or 0) or _seq_from_programs(art)
    notes = [f"precision: {why}"]
    if own_graph:
        cost = onnx_ops(main, {"batch": 1, "seq": seq, "s0": 1, "s1": seq})
        ops, raw, uncosted, act_peak = cost.ops, cost.weight_bytes, cost.uncosted, cost.live_peak_bytes
        notes += cost.notes()
        path, progs = "onnx-graph", {"forward": ops}
        if prec.name == "fp32" and any(o.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for o in ops):
            prec = PRECISIONS["int8-dynamic"]
        elif prec.name == "fp32" and any(
            o.op_type in ("QLinearMatMul", "QLinearConv", "DequantizeLinear") for o in ops
        ):
            prec = PRECISIONS["int8"]
    else:
        ops, raw = traced_ops(art.model["config"], seq, prec)
        uncosted, act_peak = {}, None
        path = "torch-dispatch-trace"
        progs = {"forward": ops}
        notes.append(
            "operator list from projdeploy.models.build_model(manifest config) traced at the recipe's "
            "precision (the .pte/.mlpackage itself is not parsed)"
        )
    if own_graph:  # exact initializer bytes; the rest of the file is graph + metadata
        scale = 1.0
        notes.append(f"weights: {raw:.0f} initializer bytes of a {file_bytes} byte file (rest: graph, metadata)")
    else:  # the traced model approximates storage; scale to the real file
        scale = file_bytes / raw if raw > 0 else 1.0
        notes.append(f"weights scaled x{scale:.3f} to the real file size {file_bytes} bytes")
    progs = {k: _scale(v, scale) for k, v in progs.items()}
    return Graph(path, progs, prec, file_bytes, raw, scale, notes, uncosted, act_peak)


def _seq_from_programs(art) -> int:
    for prog in art.programs.values():
        for t in prog.get("inputs", []):
            if t.name == "input_ids":
                last = t.shape[-1]
                if isinstance(last, int) and last > 1:
                    return last
    return int(art.model.get("config", {}).get("max_position_embeddings", 64))


def shape_of(art) -> TransformerShape:
    return TransformerShape.from_hf(art.model["config"])
