"""FLOPs and bytes of every ONNX operator, grouped into the operator classes the estimator fits.

    python -c "from projdeploy.check.opcost import onnx_model_ops; import onnx; \
print(onnx_model_ops(onnx.load('out/cls-onnx/model.onnx'), {'batch': 1, 'seq': 64}).uncosted)"

Classes (each has its own fitted compute efficiency per runtime, see ``profiles/_runtimes.yaml``):
``matmul`` (activation x weight: MatMul/Gemm/linear), ``attention`` (activation x activation matmuls and
fused attention ops), ``conv`` (dense and grouped convolutions), ``dwconv`` (depthwise: one input channel
per group), ``elementwise`` (activations, norms, softmax, pooling, resize, reductions, (de)quantize),
``data`` (copies: transpose, concat, slice, gather, pad...), ``view`` (reshape-like: no bytes, no dispatch).
An operator type in none of the tables is costed by its bytes only and listed in ``uncosted``: the report
shows it, it is never a silent zero.

FLOP conventions (one multiply-add = 2 FLOPs): Conv ``2 * out * Cin/groups * prod(kernel)``; ConvTranspose
``2 * in * Cout/groups * prod(kernel)``; pooling ``out * prod(kernel)``; global pooling and reductions
``in``; resize ``4 * out`` (linear/cubic) or ``out`` (nearest); LayerNormalization ``8 * elems``, RMS norm
``4 * elems``, BatchNormalization ``2 * elems``, softmax ``5 * elems``; fused attention
``4 * B * H * Sq * Sk * hd + 5 * B * H * Sq * Sk``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .ops import OpCost

CLASSES = ("matmul", "attention", "conv", "dwconv", "elementwise", "data", "view", "uncosted")

# FLOPs per output element for elementwise-class ops
EW_FLOPS = {
    **dict.fromkeys(
        "Add Sub Mul Div Neg Sqrt Reciprocal Pow Exp Log Abs Ceil Floor Round Sign Relu Max Min Where Equal "
        "Less LessOrEqual Greater GreaterOrEqual Not And Or Xor IsNaN IsInf Clip Mod Cos Sin BitShift "
        "ArgMax ArgMin CumSum Sum Mean".split(),
        1,
    ),
    **dict.fromkeys("LeakyRelu PRelu ThresholdedRelu".split(), 2),
    **dict.fromkeys("HardSigmoid Elu Selu Celu".split(), 3),
    **dict.fromkeys("Sigmoid Tanh Erf HardSwish Softplus Softsign QuickGelu".split(), 4),
    **dict.fromkeys("Gelu FastGelu BiasGelu Mish".split(), 8),
    "Softmax": 5,
    "LogSoftmax": 6,
    "LayerNormalization": 8,
    "SkipLayerNormalization": 9,
    "SimplifiedLayerNormalization": 4,
    "RMSNormalization": 4,
    "SkipSimplifiedLayerNormalization": 5,
    "BatchNormalization": 2,
    "InstanceNormalization": 8,
    "GroupNormalization": 8,
    "LpNormalization": 3,
    "QuantizeLinear": 2,
    "DequantizeLinear": 2,
    "DynamicQuantizeLinear": 3,
    "QLinearAdd": 3,
    "QLinearMul": 3,
    "QLinearSigmoid": 6,
    "QLinearLeakyRelu": 4,
}
# ops whose FLOPs scale with the *input* size (reductions, global pooling)
REDUCE = set(
    "ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL2 ReduceL1 ReduceSumSquare ReduceLogSumExp "
    "GlobalAveragePool GlobalMaxPool GlobalLpPool QLinearGlobalAveragePool".split()
)
POOL = {"MaxPool", "AveragePool", "LpPool", "QLinearAveragePool"}
RESIZE = {"Resize", "Upsample"}
MATMUL = {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "MatMulNBits", "FusedMatMul", "QGemm"}
CONV = {"Conv", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv"}
ATTENTION = {"Attention", "MultiHeadAttention", "GroupQueryAttention"}
DATA = set(
    "Transpose Concat Split Slice Gather GatherElements GatherND Expand Tile Pad Cast CastLike DepthToSpace "
    "SpaceToDepth ScatterND ScatterElements Range Trilu TopK NonZero OneHot Compress ReverseSequence "
    "EyeLike NonMaxSuppression RoiAlign GridSample".split()
)
VIEW = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Dropout"}
FREE = {"Constant", "Shape", "Identity", "ConstantOfShape", "Size"}  # folded by every runtime
DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 17: 1, 18: 1}


@dataclass
class OnnxCost:
    ops: list  # list[OpCost]
    weight_bytes: float  # all initializers
    uncosted: dict = field(default_factory=dict)  # op type -> count (bytes only, FLOPs unknown)
    missing_shapes: int = 0  # nodes whose output shape could not be inferred (FLOPs unknown)
    live_peak_bytes: float = 0.0  # activation arena: peak of live intermediate tensors in node order

    def notes(self) -> list[str]:
        out = []
        if self.uncosted:
            out.append("uncosted operator types (bytes only, FLOPs unknown): " + ", ".join(sorted(self.uncosted)))
        if self.missing_shapes:
            out.append(f"{self.missing_shapes} ONNX node(s) without inferred shapes (FLOPs unknown)")
        return out


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.ints:
                return list(a.ints)
            if a.type == 2:  # INT
                return a.i
            if a.type == 1:
                return a.f
            if a.type == 3:
                return a.s.decode()
    return default


class _Shapes:
    """Inferred shapes/dtypes of a graph's tensors, with symbolic dims bound from ``sym``."""

    def __init__(self, model, sym: dict):
        g = model.graph
        self.inits = {i.name: (list(i.dims), DTYPE_BYTES.get(i.data_type, 4)) for i in g.initializer}
        self.info = {}
        for v in list(g.value_info) + list(g.input) + list(g.output):
            tt = v.type.tensor_type
            self.info[v.name] = (self._dims(tt, sym), DTYPE_BYTES.get(tt.elem_type, 4))
        for n, (dims, b) in self.inits.items():
            self.info[n] = (dims, b)

    @staticmethod
    def _dims(tt, sym):
        if not tt.HasField("shape"):
            return None
        out = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                out.append(d.dim_value)
            elif d.dim_param in sym:
                out.append(sym[d.dim_param])
            else:
                return None
        return out

    def dims(self, name):
        return self.info.get(name, (None, 4))[0]

    def numel(self, name):
        d = self.dims(name)
        return None if d is None else math.prod(d)

    def itemsize(self, name):
        return self.info.get(name, (None, 4))[1]


def _weight_like(model, shapes: _Shapes) -> set:
    """Initializers and tensors computed from initializers only (dequantized/transposed/cast weights)."""
    w = set(shapes.inits)
    for node in model.graph.node:
        ins = [x for x in node.input if x]
        if node.op_type == "Constant" or (ins and all(x in w for x in ins)):
            w.update(node.output)
    return w


def _flops(node, sh: _Shapes, weights: set) -> tuple[str, float | None]:
    """(class, FLOPs) of one node; FLOPs None when a needed shape is unknown."""
    t = node.op_type
    out = sh.numel(node.output[0]) if node.output and node.output[0] else None
    if t in MATMUL:
        a = sh.dims(node.input[0])
        b_is_w = len(node.input) > 1 and node.input[1] in weights
        a_is_w = node.input[0] in weights
        cls = "matmul" if (a_is_w or b_is_w) else "attention"
        if t == "MatMulNBits":
            k = _attr(node, "K")
            return "matmul", None if out is None else 2.0 * out * k
        if a is None or out is None:
            return cls, None
        k = a[0] if (t == "Gemm" and _attr(node, "transA", 0)) else a[-1]
        return cls, 2.0 * out * k
    if t in CONV:
        w_in = 3 if t == "QLinearConv" else 1
        wd = sh.dims(node.input[w_in])
        groups = _attr(node, "group", 1)
        if wd is None or out is None:
            return "conv", None
        cin_g = wd[1]
        cls = "dwconv" if groups > 1 and cin_g == 1 else "conv"
        return cls, 2.0 * out * cin_g * math.prod(wd[2:])
    if t == "ConvTranspose":
        wd, inp = sh.dims(node.input[1]), sh.numel(node.input[0])
        if wd is None or inp is None:
            return "conv", None
        return "conv", 2.0 * inp * wd[1] * math.prod(wd[2:])
    if t in ATTENTION:
        return "attention", _fused_attention_flops(node, sh)
    if t in POOL:  # a kernel larger than the input (global pooling written as AveragePool) reads the input once
        k, ind = _attr(node, "kernel_shape", [1]), sh.dims(node.input[0])
        if ind is not None:
            k = [min(a, b) for a, b in zip(k, ind[2:])]
        return "elementwise", None if out is None else float(out * math.prod(k))
    if t in REDUCE:
        n = sh.numel(node.input[0])
        return "elementwise", None if n is None else float(n)
    if t in RESIZE:
        mode = _attr(node, "mode", "nearest")
        return "elementwise", None if out is None else float(out * (1 if mode == "nearest" else 4))
    if t in EW_FLOPS:
        return "elementwise", None if out is None else float(EW_FLOPS[t] * out)
    if t == "Einsum":
        return "attention", _einsum_flops(node, sh)
    if t in DATA:
        return "data", 0.0
    if t in VIEW:
        return "view", 0.0
    return "uncosted", 0.0


def _fused_attention_flops(node, sh: _Shapes) -> float | None:
    q = sh.dims(node.input[0])
    heads = _attr(node, "num_heads") or _attr(node, "q_num_heads")
    if q is None or not heads:
        return None
    if len(q) == 4:  # (B, H, S, hd)
        b, h, s, hd = q
        sk = s
    else:  # (B, S, H*hd)
        b, s, hidden = q
        h, hd, sk = heads, hidden // heads, s
        k = sh.dims(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if k is not None and len(k) == 3 and node.op_type != "Attention":
            sk = k[1]
    return 4.0 * b * h * s * sk * hd + 5.0 * b * h * s * sk


def _einsum_flops(node, sh: _Shapes) -> float | None:
    eq = _attr(node, "equation", "")
    ins = [sh.dims(x) for x in node.input]
    if any(d is None for d in ins) or "->" not in eq:
        return None
    lhs = eq.replace(" ", "").split("->")[0].split(",")
    sizes = {}
    for spec, dims in zip(lhs, ins):
        for ch, n in zip(spec, dims):
            sizes[ch] = n
    return 2.0 * math.prod(sizes.values())


def _live_peak(model, sh: _Shapes, weights: set) -> float:
    """Peak bytes of intermediate tensors alive at once, executing nodes in graph order."""
    last_use = {}
    for i, node in enumerate(model.graph.node):
        for x in node.input:
            last_use[x] = i
    for o in model.graph.output:
        last_use[o.name] = len(model.graph.node)
    live, peak = {}, 0.0
    for x in model.graph.input:
        if x.name not in weights:
            live[x.name] = (sh.numel(x.name) or 0) * sh.itemsize(x.name)
    for i, node in enumerate(model.graph.node):
        if node.op_type in FREE or node.op_type in VIEW:
            continue
        for o in node.output:
            if o and o not in weights:
                live[o] = (sh.numel(o) or 0) * sh.itemsize(o)
        peak = max(peak, sum(live.values()))
        for x in list(live):
            if last_use.get(x, -1) <= i:
                del live[x]
    return float(peak)


def _infer(model, sym: dict):
    """Shapes by ONNX shape inference; where that leaves tensors unknown (shapes computed at run time, e.g.
    a Pad whose pads come from Shape ops), ONNX Runtime's symbolic shape inference, which folds them."""
    import onnx

    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - keep the shapes the exporter recorded
        pass
    sh = _Shapes(model, sym)
    if all(sh.dims(o) is not None for n in model.graph.node for o in n.output if o):
        return model, sh
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        model2 = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001 - unknown shapes are reported, not fatal
        return model, sh
    return model2, _Shapes(model2, sym)


def onnx_model_ops(model, sym: dict) -> OnnxCost:
    """Per-node costs of an ONNX ModelProto (shape-inferred here); ``sym`` binds symbolic dims."""
    model, sh = _infer(model, sym)
    weights = _weight_like(model, sh)
    ops, uncosted, missing = [], {}, 0
    for i, node in enumerate(model.graph.node):
        if node.op_type in FREE or all(o in weights for o in node.output if o):
            continue  # constant-folded by every runtime
        cls, flops = _flops(node, sh, weights)
        missing += flops is None
        if cls == "uncosted":
            uncosted[node.op_type] = uncosted.get(node.op_type, 0) + 1
        w_elems = w_bytes = a_elems = a_bytes = 0.0
        for x in node.input:
            if not x:
                continue
            n = sh.numel(x) or 0
            if x in weights:
                w_elems, w_bytes = w_elems + n, w_bytes + n * sh.itemsize(x)
            elif cls != "view":
                a_elems, a_bytes = a_elems + n, a_bytes + n * sh.itemsize(x)
        if node.op_type == "Gather" and node.input[0] in weights:  # embedding lookup reads rows only
            rows, d = sh.numel(node.input[1]) or 1, sh.dims(node.input[0]) or [1]
            w_elems = rows * math.prod(d[1:])
            w_bytes = w_elems * sh.itemsize(node.input[0])
        if cls != "view":
            for o in node.output:
                n = sh.numel(o) or 0
                a_elems, a_bytes = a_elems + n, a_bytes + n * sh.itemsize(o)
        ops.append(
            OpCost(
                node.name or f"{node.op_type}_{i}",
                node.op_type,
                float(flops or 0.0),
                float(w_bytes),
                float(a_bytes),
                dispatch=cls != "view",
                op_class=cls,
                weight_elems=float(w_elems),
                act_elems=float(a_elems),
            )
        )
    total_w = float(sum(math.prod(d) * b for d, b in sh.inits.values()))
    return OnnxCost(ops, total_w, uncosted, missing, _live_peak(model, sh, weights))
