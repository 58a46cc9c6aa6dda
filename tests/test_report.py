"""Report schema: round trip, validation errors, merging several artifacts' reports."""

from __future__ import annotations

import copy

import pytest

from projdeploy.errors import ConfigError
from projdeploy.report import SCHEMA, figure, merge_reports, read_report, validate_report, write_report


def _report(name="a", passed=True):
    line = {
        "name": "size_mb",
        "profile": None,
        "value": 1.0,
        "limit": 2.0,
        "unit": "MB",
        "kind": "deterministic",
        "passed": passed,
        "note": "",
    }
    art = {
        "name": name,
        "path": "/x",
        "format": "onnx",
        "recipe": {"name": "fp32"},
        "task": "digits-cls",
        "runtime": "onnxruntime-cpu",
        "runtime_reason": "",
        "precision": "fp32",
        "size_bytes": 2**20,
        "graph": {"path": "onnx-graph"},
        "measured": {"available": False, "reason": "test"},
        "metric": {
            "name": "accuracy",
            "artifact": 0.9,
            "float": 0.91,
            "drop": 0.01,
            "float_source": "",
            "artifact_source": "",
        },
        "host_fit": None,
        "estimates": {},
        "budget": {},
        "budget_source": "",
        "lines": [line],
        "passed": passed,
    }
    return {
        "schema": SCHEMA,
        "created_by": "test",
        "host": {"platform": "p", "threads": 1},
        "calibration": {"name": "c", "samples_s": [0.1, 0.2], "median_s": 0.15},
        "artifacts": [art],
        "profiles": {"pixel-8": {"title": "t", "soc": "s", "path": "p", "sources": {"S1": "https://x"}}},
        "figures": [
            figure(name, None, "size_bytes", 2**20, "bytes", "deterministic"),
            figure(name, "pixel-8", "est_latency_ms", 1.5, "ms", "deterministic", tolerance=1e-6),
        ],
        "passed": passed,
    }


def test_round_trip(tmp_path):
    r = _report()
    paths = write_report(r, tmp_path)
    assert read_report(paths["json"]) == r
    assert "pixel-8" in (tmp_path / "report.html").read_text()


def test_validation_names_the_field():
    r = _report()
    r["figures"][0]["kind"] = "guess"
    with pytest.raises(ConfigError, match=r"figures\[0\].kind"):
        validate_report(r)
    r = _report()
    del r["calibration"]["median_s"]
    with pytest.raises(ConfigError, match="calibration.median_s"):
        validate_report(r)
    with pytest.raises(ConfigError, match="schema"):
        validate_report({**_report(), "schema": "other/9"})


def test_merge_reports():
    m = merge_reports([_report("a"), _report("b", passed=False)])
    assert [a["name"] for a in m["artifacts"]] == ["a", "b"] and m["passed"] is False
    assert len(m["figures"]) == 4 and m["calibration"]["others"][0]["median_s"] == 0.15
    with pytest.raises(ConfigError, match="appears in two reports"):
        merge_reports([_report("a"), copy.deepcopy(_report("a"))])


def test_report_type(tmp_path):
    from projdeploy.report import Report

    d = _report("a", passed=False)
    r = Report.from_dict(d)
    assert r.passed is False and r.calibration.median_s == 0.15 and r.artifacts[0]["name"] == "a"
    assert set(r.figures.figures) == {"a/host/size_bytes", "a/pixel-8/est_latency_ms"}
    d["passed"] = True  # the report keeps its own copy
    assert r["passed"] is False and r.to_dict()["passed"] is False
    w = r.write(tmp_path)
    assert w.written["json"].endswith("report.json") and r.written is None
    assert Report.read(tmp_path).to_dict() == r.to_dict()
    with pytest.raises(ConfigError, match="schema"):
        Report.from_dict({**_report(), "schema": "other/9"})
