"""ONNX operator costing on hand-built graphs: FLOPs and bytes computed by hand, classes, uncosted ops."""

from __future__ import annotations

import pytest

from projdeploy.check.ops import PRECISIONS, retarget


def _model(nodes, inputs, outputs, inits=()):
    from onnx import TensorProto, helper

    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    g = helper.make_graph(nodes, "g", [vi(n, s) for n, s in inputs], [vi(n, s) for n, s in outputs], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _w(name, shape):
    import numpy as np
    from onnx import numpy_helper

    return numpy_helper.from_array(np.zeros(shape, dtype="float32"), name)


def _cost(model):
    from projdeploy.check.opcost import onnx_model_ops

    return onnx_model_ops(model, {})


def test_conv_flops_and_bytes_by_hand():
    from onnx import helper

    m = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])],
        [("x", [1, 3, 8, 8])],
        [("y", [1, 4, 8, 8])],
        [_w("w", [4, 3, 3, 3])],
    )
    (op,) = _cost(m).ops
    # 2 FLOPs x 256 outputs x (3 input channels x 3 x 3 kernel)
    assert op.cls == "conv" and op.flops == 2 * 4 * 64 * 3 * 9 == 13824
    assert op.weight_bytes == 4 * 3 * 9 * 4 and op.act_bytes == (3 * 64 + 4 * 64) * 4


def test_depthwise_conv_is_its_own_class():
    from onnx import helper

    m = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], group=4)],
        [("x", [1, 4, 8, 8])],
        [("y", [1, 4, 8, 8])],
        [_w("w", [4, 1, 3, 3])],
    )
    (op,) = _cost(m).ops
    assert op.cls == "dwconv" and op.flops == 2 * 4 * 64 * 9 == 4608 and op.weight_elems == 36


def test_attention_matmuls_softmax_and_norm_by_hand():
    from onnx import helper

    m = _model(
        [
            helper.make_node("MatMul", ["q", "kt"], ["s"]),
            helper.make_node("Softmax", ["s"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["o"]),
            helper.make_node("LayerNormalization", ["o", "g", "b"], ["n"], axis=-1),
            helper.make_node("MatMul", ["n", "wo"], ["y"]),
        ],
        [("q", [1, 2, 16, 8]), ("kt", [1, 2, 8, 16]), ("v", [1, 2, 16, 8])],
        [("y", [1, 2, 16, 4])],
        [_w("g", [8]), _w("b", [8]), _w("wo", [8, 4])],
    )
    ops = {o.name.split("_")[0] + str(i): o for i, o in enumerate(_cost(m).ops)}
    qk, sm, av, ln, proj = ops.values()
    assert (qk.cls, qk.flops) == ("attention", 2 * (2 * 16 * 16) * 8)  # act x act matmul
    assert (sm.cls, sm.flops) == ("elementwise", 5 * 2 * 16 * 16)
    assert (av.cls, av.flops) == ("attention", 2 * (2 * 16 * 8) * 16)
    assert (ln.cls, ln.flops, ln.weight_bytes) == ("elementwise", 8 * 2 * 16 * 8, 2 * 8 * 4)
    assert (proj.cls, proj.flops, proj.weight_bytes) == ("matmul", 2 * (2 * 16 * 4) * 8, 8 * 4 * 4)


def test_pooling_kernel_larger_than_input_reads_input_once():
    from onnx import helper

    m = _model(
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[64, 64], ceil_mode=1)],
        [("x", [1, 8, 7, 7])],
        [("y", [1, 8, 1, 1])],
    )
    (op,) = _cost(m).ops
    assert op.flops == 8 * 49


def test_precision_sets_activation_and_weight_bytes():
    from onnx import helper

    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        [("x", [1, 10, 16])],
        [("z", [1, 10, 32])],
        [_w("w", [16, 32])],
    )
    ops = _cost(m).ops
    acts = {q: sum(o.act_bytes for o in retarget(ops, PRECISIONS[q])) for q in ("fp32", "fp16", "int8", "w8a16")}
    elems = 10 * 16 + 10 * 32 + 10 * 32 + 10 * 32
    assert acts == {"fp32": 4 * elems, "fp16": 2 * elems, "int8": elems, "w8a16": 2 * elems}
    w = {q: sum(o.weight_bytes for o in retarget(ops, PRECISIONS[q])) for q in ("fp32", "int8", "int8-dynamic")}
    assert w == {"fp32": 16 * 32 * 4, "int8": 16 * 32, "int8-dynamic": 16 * 32}
    # dynamic int8 keeps fp32 activations between operators; static int8 stores int8
    assert PRECISIONS["int8-dynamic"].act_bytes == 4 and PRECISIONS["int8"].act_bytes == 1


def test_uncosted_op_is_listed_never_silent(tmp_path):
    from onnx import helper

    from projdeploy.check.estimator import DeviceParams, estimate_forward

    m = _model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("FancyOp", ["r"], ["y"], domain="com.example")],
        [("x", [1, 64])],
        [("y", [1, 64])],
    )
    m.opset_import.append(__import__("onnx").helper.make_opsetid("com.example", 1))
    cost = _cost(m)
    assert cost.uncosted == {"FancyOp": 1}
    assert any("FancyOp" in n for n in cost.notes())
    p = DeviceParams("d", "r", "fp32", "npu", None, 100.0, 1.0, 10.0, 1.0, 0.0, 0.0, 1.0, 0.0)
    e = estimate_forward(cost.ops, p)
    assert e["uncosted_op_types"] == ["FancyOp"] and e["unit"] == "npu"


def test_live_tensor_peak_frees_dead_tensors():
    from onnx import helper

    # x(100) -> a(100) -> b(100) -> y(100): at most two tensors of 100 floats are alive at once
    m = _model(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Relu", ["b"], ["y"]),
        ],
        [("x", [1, 100])],
        [("y", [1, 100])],
    )
    assert _cost(m).live_peak_bytes == pytest.approx(2 * 100 * 4)


def test_uncosted_op_reaches_the_report_estimate():
    """The per-profile estimate in report.json lists the uncosted operator type (run._estimate)."""
    from onnx import helper

    from projdeploy.check.graph import Graph
    from projdeploy.check.profiles import get_profile
    from projdeploy.check.run import _estimate

    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["r"]), helper.make_node("FancyOp", ["r"], ["y"], domain="x.y")],
        [("x", [1, 8, 16])],
        [("y", [1, 8, 16])],
        [_w("w", [16, 16])],
    )
    m.opset_import.append(helper.make_opsetid("x.y", 1))
    cost = _cost(m)
    g = Graph(
        "onnx-graph",
        {"forward": cost.ops},
        PRECISIONS["fp32"],
        1024,
        1024.0,
        1.0,
        cost.notes(),
        cost.uncosted,
        cost.live_peak_bytes,
    )
    from types import SimpleNamespace

    art = SimpleNamespace(model={"task_kind": "cls"})  # the artifact fields _estimate reads
    est = _estimate(get_profile("galaxy-s24"), g, art, "onnxruntime-cpu", 0.0)
    assert est["uncosted_op_types"] == ["FancyOp"] and est["unit"] == "cpu"
    assert g.summary()["uncosted"] == {"FancyOp": 1}
    assert any(p["runtime"] == "qnn-npu" for p in est["planned"])
