"""Estimator on hand-computed graphs, LM prefill/decode, memory accounting, fallbacks, published-point bench."""

from __future__ import annotations

import dataclasses

import pytest

from projdeploy.check.estimator import DeviceParams, estimate_forward, estimate_lm, resolve_params
from projdeploy.check.memory import memory_estimate
from projdeploy.check.ops import PRECISIONS, OpCost, TransformerShape, totals, transformer_ops

P = DeviceParams(
    "dev",
    "rt",
    "fp32",
    "cpu",
    1,
    peak_gflops=100.0,
    compute_eff=0.5,
    bandwidth_gbs=10.0,
    bandwidth_eff=0.5,
    dispatch_us=10.0,
    token_overhead_ms=2.0,
    cold_start_factor=3.0,
    runtime_overhead_mb=20.0,
)


def test_roofline_on_hand_computed_graph():
    ops = [
        OpCost("mm", "linear", 1e9, 0.0, 1e6),  # compute: 1e9/(50e9)=20 ms; memory 1e6/5e9=0.2 ms
        OpCost("add", "add", 1e3, 0.0, 5e7),  # memory: 5e7/5e9 = 10 ms
        OpCost("shape", "shape", 0.0, 0.0, 0.0, dispatch=False),
    ]
    e = estimate_forward(ops, P)
    assert e["latency_ms"] == pytest.approx(20.0 + 10.0 + 2 * 0.010)
    assert e["compute_bound_ops"] == 1 and e["ops"] == 2
    assert e["cold_start_ms"] == pytest.approx(3.0 * e["latency_ms"])


def test_transformer_ops_match_model_config_flops():
    from projdeploy.models import config_for

    cfg = config_for("tiny", 19)
    s = TransformerShape.from_hf(cfg.to_hf_dict())
    assert s.num_parameters() == cfg.num_parameters()
    t = totals(transformer_ops(s, 64, 0, PRECISIONS["fp32"]))
    # linear FLOPs equal ModelConfig's 2*params-per-token accounting (attention counted separately)
    lin = sum(o.flops for o in transformer_ops(s, 64, 0, PRECISIONS["fp32"]) if o.op_type == "linear")
    assert lin == pytest.approx(64 * (cfg.flops_per_token(64) - 2 * cfg.num_hidden_layers * 16 * 4 * 64))
    assert t["weight_bytes"] == pytest.approx(4 * (cfg.num_parameters() - 5 * 64 - 19 * 64 + 64 * 64) - 0, rel=0.05)


def test_traced_graph_agrees_with_analytic_ops():
    from projdeploy.check.graph import traced_ops
    from projdeploy.models import config_for

    cfg = config_for("tiny", 19)
    ops, raw = traced_ops(cfg.to_hf_dict(), 32, PRECISIONS["fp32"])
    analytic = totals(transformer_ops(TransformerShape.from_hf(cfg.to_hf_dict()), 32, 0, PRECISIONS["fp32"]))
    analytic_ops = transformer_ops(TransformerShape.from_hf(cfg.to_hf_dict()), 32, 0, PRECISIONS["fp32"])
    # weight matmuls: exactly the analytic linear FLOPs
    traced_mm = sum(o.flops for o in ops if o.op_type in ("mm", "addmm", "linear"))
    analytic_mm = sum(o.flops for o in analytic_ops if o.op_type == "linear")
    assert traced_mm == pytest.approx(analytic_mm, rel=1e-6)
    # attention: the traced QK^T / AV matmuls compute the masked half too; the analytic sdpa counts
    # the causal half plus the softmax, so it lies between half and all of the traced attention work
    traced_attn = sum(
        o.flops for o in ops if o.op_type in ("bmm", "matmul", "_softmax", "scaled_dot_product_attention")
    )
    analytic_attn = sum(o.flops for o in analytic_ops if o.op_type == "sdpa")
    assert 0.5 * traced_attn <= analytic_attn <= traced_attn
    assert sum(o.flops for o in ops) == pytest.approx(analytic["flops"], rel=0.25)
    assert raw == pytest.approx(4 * cfg.num_parameters(), rel=1e-6)


def test_lm_decode_is_bandwidth_bound_with_token_overhead():
    s = TransformerShape(1000, 256, 768, 4, 8, 4)
    lm = estimate_lm(s, PRECISIONS["int8"], P, prompt=32, gen=32)
    dec = transformer_ops(s, 1, 48, PRECISIONS["int8"], logits="last")
    mem_ms = sum(o.bytes for o in dec) / 5e9 * 1e3
    assert lm["decode_ms_per_token"] == pytest.approx(mem_ms + len(dec) * 0.010 + 2.0, rel=0.02)
    assert lm["ttft_ms"] == lm["prefill_ms"] and lm["decode_tok_s"] == pytest.approx(1e3 / lm["decode_ms_per_token"])
    slow = estimate_lm(s, PRECISIONS["int8"], dataclasses.replace(P, bandwidth_eff=0.25), prompt=32, gen=32)
    assert slow["decode_tok_s"] < lm["decode_tok_s"]


def test_memory_accounting():
    ops = [OpCost("a", "x", 0, 0, 3 * 2**20), OpCost("b", "y", 0, 0, 5 * 2**20)]
    m = memory_estimate(weight_bytes=10 * 2**20, ops=ops, kv_cache_bytes=2 * 2**20, params=P, budget_mb=36)
    assert (m["weights_mb"], m["activations_mb"], m["kv_cache_mb"], m["runtime_overhead_mb"]) == (10, 5, 2, 20)
    assert m["total_mb"] == 37 and m["fits_app_budget"] is False
    assert (
        memory_estimate(weight_bytes=0, ops=ops, kv_cache_bytes=0, params=P, budget_mb=None)["fits_app_budget"] is None
    )


def test_unknowns_are_stated_as_assumptions():
    p = resolve_params("pixel-8", "executorch-xnnpack", "fp32")
    text = " ".join(p.assumptions)
    assert "memory_bandwidth_gbs unknown" in text and "compute_eff unknown" in text
    assert p.sources["memory_bandwidth_gbs"] == "assumed" and p.sources["peak_gflops"] == "HW2"
    # a runtime with a fitted family takes the family's numbers instead of fallbacks
    ort = resolve_params("pixel-8", "onnxruntime-cpu", "int8")
    assert ort.family == "ort-cpu" and ort.sources["compute_eff"] == "FIT" and ort.compute_eff < 1.0
    s24 = resolve_params("galaxy-s24", "executorch-xnnpack", "bf16")
    assert s24.compute_eff == 0.23 and s24.sources["compute_eff"] == "FIT"


def test_published_llm_points_bench_runs_and_reports_all_protocols():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_estimator_llm", Path(__file__).parent.parent / "bench/estimator_llm.py"
    )
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["bench_estimator_llm"] = mod
    spec.loader.exec_module(mod)
    res = mod.evaluate()
    s = res["summary"]
    assert s["insample"]["all"]["n"] == s["lomo"]["all"]["n"] >= 20
    # the shipped (fitted) profile values reproduce their own fit: in-sample error is small
    assert s["insample"]["all"]["median_x"] < 1.3
    assert s["lomo"]["all"]["median_x"] >= s["insample"]["all"]["median_x"] * 0.9


def test_held_out_split_is_the_sha256_rule():
    import csv
    import hashlib
    from pathlib import Path

    from projdeploy.check.fit import split_of

    # golden: these ids never change side (first byte of sha256: mobilenet_v2 even, resnet18 odd)
    assert split_of("mobilenet_v2") == "fit" and split_of("resnet50") == "fit"
    assert split_of("resnet18") == "holdout" and split_of("bert_base_uncased_hf") == "holdout"
    for mid in ("vit", "whisper_tiny", "levit", "convnext_tiny"):
        even = hashlib.sha256(mid.encode()).digest()[0] % 2 == 0
        assert split_of(mid) == ("fit" if even else "holdout")
    rows = list(csv.DictReader((Path(__file__).parent.parent / "bench/data/aihub_perf.csv").open()))
    assert len(rows) > 5000 and all(r["split"] == split_of(r["model_id"]) for r in rows)
    ids = {r["model_id"] for r in rows}
    assert 0.3 < sum(split_of(m) == "fit" for m in ids) / len(ids) < 0.7


def test_fit_refuses_held_out_models():
    from projdeploy.check.fit import Point, fit_family, fit_memory

    pt = Point("resnet18", "holdout", "galaxy-s24", "qnn-npu", "qnn-htp", "npu", "int8", 1.0, 10.0, 1e4, 50, True, "")
    with pytest.raises(ValueError, match="resnet18"):
        fit_family("qnn-htp", [pt], {}, free_precisions=())
    with pytest.raises(ValueError, match="held-out"):
        fit_memory([pt], {})


def test_npu_estimate_uses_npu_peak_and_int8_beats_fp16():
    s = resolve_params("galaxy-s24", "qnn-npu", "int8")
    assert s.unit == "npu" and s.peak_gflops == 45000 and s.family == "qnn-htp"
    assert s.class_eff and s.sources["compute_eff"] == "FIT"
    ops = [OpCost("conv", "Conv", 8e9, 25e6, 20e6, op_class="conv", weight_elems=25e6, act_elems=20e6)]
    from projdeploy.check.ops import retarget

    t = {
        q: estimate_forward(retarget(ops, PRECISIONS[q]), resolve_params("galaxy-s24", "qnn-npu", q))["latency_ms"]
        for q in ("fp16", "int8")
    }
    assert t["int8"] < t["fp16"]
    # ONNX Runtime CPU: a quantized graph is not costed at 4x the fp32 speed any more
    f32 = resolve_params("galaxy-s24", "onnxruntime-cpu", "fp32")
    i8 = resolve_params("galaxy-s24", "onnxruntime-cpu", "int8")
    assert i8.peak_gflops * i8.compute_eff < 4 * f32.peak_gflops * f32.compute_eff


def test_memory_uses_live_peak_and_fitted_overhead():
    p = resolve_params("galaxy-s25", "qnn-npu", "int8")
    assert p.sources["runtime_overhead_mb"] == "FIT"
    m = memory_estimate(weight_bytes=2**20, ops=[], kv_cache_bytes=0, params=p, budget_mb=100, act_peak_bytes=3 * 2**20)
    assert m["activations_mb"] == pytest.approx(3 * p.act_arena_factor)
    assert m["runtime_overhead_mb"] == p.runtime_overhead_mb != 50.0


def test_planned_npu_estimate_is_labelled():
    from projdeploy.check.estimator import planned_estimates
    from projdeploy.check.profiles import get_profile

    ops = [OpCost("mm", "MatMul", 1e9, 4e6, 1e5, op_class="matmul", weight_elems=1e6, act_elems=2.5e4)]
    out = planned_estimates(get_profile("galaxy-s24"), ops, "onnxruntime-cpu")
    assert {(e["runtime"], e["precision"]) for e in out} >= {("qnn-npu", "int8"), ("qnn-npu", "fp16")}
    assert all(e["kind"] == "planned-estimate" and "PLANNED" in e["note"] for e in out)


@pytest.mark.slow
def test_aihub_bench_reproduces_shipped_families_and_holds_out():
    """bench/estimator.py on the committed data: the shipped _runtimes.yaml is its fit, and no held-out
    model id is among any family's fit models."""
    import importlib.util
    import sys
    from pathlib import Path

    from projdeploy.check.families import get_family
    from projdeploy.check.fit import split_of

    spec = importlib.util.spec_from_file_location(
        "bench_estimator", Path(__file__).parent.parent / "bench/estimator.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_estimator"] = mod
    spec.loader.exec_module(mod)
    res = mod.evaluate()
    for name, f in res["fits"].items():
        assert all(split_of(m) == "fit" for m in f.models)
        shipped = get_family(name)
        for cls, v in f.class_eff.items():
            assert shipped.class_eff[cls].value == pytest.approx(v, rel=2e-3), (name, cls)
    held = {p.model_id for p, _, _ in res["held"]}
    assert held and all(split_of(m) == "holdout" for m in held)
    assert res["held_by_unit"]["npu"]["n"] > 100 and res["held_by_unit"]["npu"]["median_x"] < 2.0


def test_gate_fails_when_less_of_the_graph_runs_on_the_assumed_unit():
    from projdeploy.gate import compare, parse_figures
    from projdeploy.gate.compare import EXIT_REGRESSION
    from projdeploy.report import figure

    def figs(frac):
        f = figure("m", "galaxy-s24", "unit_flops_fraction", frac, "fraction", "deterministic", higher_is_better=True)
        return {"schema": "projdeploy.report/1", "figures": [f]}

    base = parse_figures(figs(1.0), "baseline.json")
    assert compare(parse_figures(figs(1.0), "r.json"), base).exit_code == 0
    res = compare(parse_figures(figs(0.9), "r.json"), base)
    assert res.exit_code == EXIT_REGRESSION and res.diffs[0].status == "regression"


def test_check_path_reproduces_the_benchmark_prediction():
    """``projdeploy check``'s estimate (resolve_params + estimate_forward) equals the fitted model the
    benchmark scores (fit.predict_ms with the shipped family), on a real costed model."""
    import json
    from pathlib import Path

    from projdeploy.check.families import get_family
    from projdeploy.check.fit import FamilyFit, ModelCost, Point, predict_ms
    from projdeploy.check.ops import retarget

    rec = json.loads((Path(__file__).parent.parent / "bench/data/model_ops.json").read_text())["resnet18"]
    mc = ModelCost.from_record("resnet18", rec)
    ops = [
        OpCost(t, t, fl, 0.0, 0.0, dispatch=c != "view", op_class=c, weight_elems=w, act_elems=a)
        for c, t, fl, w, a, n in rec["ops"]
        for _ in range(n)
    ]
    fam = get_family("qnn-htp")
    for prec in ("int8", "fp16"):
        p = resolve_params("galaxy-s24", "qnn-npu", prec)
        est = estimate_forward(retarget(ops, PRECISIONS[prec]), p)["latency_ms"]
        f = FamilyFit(
            "qnn-htp",
            {k: v.value for k, v in fam.class_eff.items()},
            {k: v.value for k, v in fam.precision_eff.items()},
            fam.get("bandwidth_eff").value,
            fam.get("dispatch_us").value,
            fam.get("fixed_ms").value,
            act_dram_share=fam.get("act_dram_share").value,
            onchip_mb=fam.get("onchip_mb").value,
        )
        pt = Point(
            "resnet18", "holdout", "galaxy-s24", "qnn-npu", "qnn-htp", "npu", prec, 1.0, None, 45000.0, 76.8, True, ""
        )
        assert est == pytest.approx(predict_ms(mc, pt, f), rel=1e-9)


def test_traced_graph_of_a_transformers_bert_counts_its_linears():
    """Architectures outside projdeploy's families (a BERT classifier's manifest config) are traced through
    transformers: every linear's FLOPs are 2 x tokens x its weights, and the raw bytes are its parameters."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from projdeploy.check.graph import traced_ops

    cfg = BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, num_labels=3,
    )  # fmt: skip
    d = cfg.to_dict()
    d["architectures"] = ["BertForSequenceClassification"]
    ops, raw = traced_ops(d, 16, PRECISIONS["fp32"])
    model = BertForSequenceClassification(cfg)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    per_token = sum(m.weight.numel() for m in model.bert.encoder.modules() if isinstance(m, torch.nn.Linear))
    pooled = sum(m.weight.numel() for m in (model.bert.pooler.dense, model.classifier))  # on the first token only
    traced = sum(o.flops for o in ops if o.op_type in ("mm", "addmm", "linear"))
    assert len(linears) == 2 * 6 + 2
    assert traced == pytest.approx(2 * (16 * per_token + pooled), rel=1e-6)
    assert raw == pytest.approx(4 * sum(p.numel() for p in model.parameters()), rel=1e-6)
