"""Budget logic, bad input, and the end-to-end check on a real exported ONNX artifact."""

from __future__ import annotations

import json

import pytest

from projdeploy.check import budgets as B
from projdeploy.errors import ConfigError, ProjdeployError


class _Task:
    name = "t"
    budget = {
        "max_size_mb": 50.0,
        "max_memory_mb": 500.0,
        "max_metric_drop": 0.02,
        "max_latency_ms": {"default": 100.0},
    }


def test_budget_file_overrides_task_default(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("max_size_mb: 1.5\nmax_latency_ms: {pixel-8: 5}\nmin_decode_tok_s: {default: 20}\n")
    b, src = B.load_budget(_Task(), f)
    assert b["max_size_mb"] == 1.5 and b["max_memory_mb"] == 500.0 and str(f) in src
    assert B.per_profile(b, "max_latency_ms", "pixel-8") == 5 and B.per_profile(b, "max_latency_ms", "x") is None
    assert B.per_profile(b, "min_decode_tok_s", "x") == 20


def test_budget_file_wrong_field_is_named(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("max_sise_mb: 3\n")
    with pytest.raises(ConfigError, match="max_sise_mb.*allowed: max_latency_ms"):
        B.load_budget(_Task(), f)
    f.write_text("max_latency_ms: {pixel-8: -1}\n")
    with pytest.raises(ConfigError, match="max_latency_ms.pixel-8"):
        B.load_budget(_Task(), f)
    with pytest.raises(ConfigError, match="does not exist"):
        B.load_budget(_Task(), tmp_path / "none.yaml")


def test_budget_lines_pass_fail_and_direction():
    assert B.line("x", 3.0, 5.0, kind="estimate")["passed"] is True
    assert B.line("x", 6.0, 5.0, kind="estimate")["passed"] is False
    assert B.line("tok", 6.0, 5.0, kind="estimate", higher_is_better=True)["passed"] is True
    assert B.line("x", None, 5.0, kind="estimate")["passed"] is None
    assert B.line("x", 3.0, None, kind="estimate")["passed"] is None


def test_artifact_without_manifest(tmp_path):
    from projdeploy.check.run import run_check

    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ProjdeployError, match="no manifest.json"):
        run_check(tmp_path, "digits-cls", ["pixel-8"])


@pytest.fixture(scope="module")
def onnx_artifact(tiny_cls_checkpoint, tmp_path_factory):
    from exporters.api import export_checkpoint

    out = tmp_path_factory.mktemp("art") / "cls-onnx"
    export_checkpoint(tiny_cls_checkpoint, "onnx", "fp32", "digits-cls", out, max_rows=64)
    return out


@pytest.mark.slow
def test_check_end_to_end_report(onnx_artifact, tmp_path, tiny_cls_checkpoint):
    from projdeploy.check import run_check
    from projdeploy.report import read_report

    r = run_check(
        onnx_artifact,
        "digits-cls",
        ["pixel-8", "iphone-13", "galaxy-s24"],
        out_dir=tmp_path / "rep",
        repeats=5,
        warmup=1,
        metric_rows=64,
        checkpoint=tiny_cls_checkpoint,
    )
    back = read_report(tmp_path / "rep")
    assert back["figures"] == r["figures"] and back["passed"] is True
    a = back["artifacts"][0]
    assert a["graph"]["path"] == "onnx-graph" and a["runtime"] == "onnxruntime-cpu"
    assert a["metric"]["drop"] == pytest.approx(0.0, abs=1e-6)  # fp32 ONNX keeps the float metric
    assert a["measured"]["programs"]["forward"]["median_ms"] > 0 and a["measured"]["threads"] == 1
    assert set(a["estimates"]) == {"pixel-8", "iphone-13", "galaxy-s24"}
    s24 = a["estimates"]["galaxy-s24"]
    assert s24["unit"] == "cpu" and s24["unit_flops_fraction"] == 1.0 and s24["uncosted_op_types"] == []
    planned = {(p["runtime"], p["precision"]) for p in s24["planned"]}
    assert ("qnn-npu", "int8") in planned and all(p["kind"] == "planned-estimate" for p in s24["planned"])
    assert a["graph"]["act_peak_bytes"] > 0 and s24["memory"]["activations_from"].startswith("live-tensor")
    assert any("memory_bandwidth_gbs unknown" in x for x in a["estimates"]["pixel-8"]["assumptions"])
    keys = {f["key"] for f in back["figures"]}
    assert "cls-onnx/host/size_bytes" in keys and "cls-onnx/pixel-8/est_latency_ms" in keys
    assert "cls-onnx/galaxy-s24/unit_flops_fraction" in keys
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "ESTIMATE" in html and "MEASURED" in html and "https://www.androidauthority.com" in html
    assert "PLANNED qnn-npu" in html
    assert back["calibration"]["median_s"] > 0


@pytest.mark.slow
def test_check_cli_fails_on_budget(onnx_artifact, tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    b = tmp_path / "budget.json"
    b.write_text(json.dumps({"max_size_mb": 0.01, "max_latency_ms": {"pixel-8": 1000}}))
    res = CliRunner().invoke(
        cli,
        [
            "check",
            "--artifact",
            str(onnx_artifact),
            "--task",
            "digits-cls",
            "--profile",
            "pixel-8",
            "--budget",
            str(b),
            "--out",
            str(tmp_path / "o"),
            "--repeats",
            "3",
            "--metric-rows",
            "32",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "FAIL size_mb" in res.output and "FAILED" in res.output
    res = CliRunner().invoke(
        cli, ["check", "--artifact", str(onnx_artifact), "--task", "digits-cls", "--profile", "nokia"]
    )
    assert res.exit_code == 2 and "known profiles: galaxy-s24" in res.output
