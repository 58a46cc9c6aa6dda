"""Gate rules, schema errors, table and CLI: ``.venv/bin/python -m pytest tests/test_gate.py -q``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_gate_helpers import ci_job, fig, latency_report, report

from projdeploy.cli import cli
from projdeploy.errors import ConfigError, DataError
from projdeploy.gate import compare, load_figures_file, parse_figures, render_markdown
from projdeploy.gate.compare import EXIT_ERROR, EXIT_PASS, EXIT_REGRESSION


def _cmp(cur, base, tol=0.10):
    return compare(parse_figures(cur, "report.json"), parse_figures(base, "baseline.json"), tol)


def _status(res, key):
    return next(d.status for d in res.diffs if d.key == key)


def test_deterministic_exact_or_own_tolerance():
    base = report(
        [
            fig("a", value=1000),
            fig("b", value=1000),
            fig("c", "flops", 5e6, tol=0.02, unit="FLOP"),
            fig("d", "est_latency_ms", 2.0, unit="ms", tol=0.05),
        ]
    )
    cur = report(
        [
            fig("a", value=1000),
            fig("b", value=1001),
            fig("c", "flops", 5.12e6, tol=0.02, unit="FLOP"),
            fig("d", "est_latency_ms", 1.5, unit="ms", tol=0.05),
        ]
    )
    res = _cmp(cur, base)
    assert [_status(res, k) for k in "abcd"] == ["pass", "regression", "regression", "improved"]
    assert res.exit_code == EXIT_REGRESSION
    # Within its own tolerance passes; a bigger model file is a regression even by one byte.
    cur["figures"][2]["value"] = 5.09e6
    assert _status(_cmp(cur, base), "c") == "pass"


def test_metric_allowed_drop_respects_direction():
    base = report(
        [
            fig("acc", "metric", 0.90, "metric", hib=True, tol=0.02, unit="accuracy"),
            fig("bpd", "metric", 1.00, "metric", hib=False, tol=0.01, unit="bits/dim"),
        ]
    )
    ok = report(
        [
            fig("acc", "metric", 0.885, "metric", hib=True, tol=0.02, unit="accuracy"),
            fig("bpd", "metric", 1.009, "metric", hib=False, tol=0.01, unit="bits/dim"),
        ]
    )
    bad = report(
        [
            fig("acc", "metric", 0.87, "metric", hib=True, tol=0.02, unit="accuracy"),
            fig("bpd", "metric", 1.02, "metric", hib=False, tol=0.01, unit="bits/dim"),
        ]
    )
    assert _cmp(ok, base).passed
    res = _cmp(bad, base)
    assert {d.key: d.status for d in res.diffs} == {"acc": "regression", "bpd": "regression"}
    assert res.diffs[0].key == "acc"  # 3.3% worse sorts before 2% worse


def test_missing_figure_fails_new_figure_passes():
    base = report([fig("x/npu/est_latency_ms", "est_latency_ms", 3.0, unit="ms", profile="npu"), fig("s")])
    cur = report([fig("s"), fig("y/size_bytes")])
    res = _cmp(cur, base)
    assert {d.key: d.status for d in res.diffs} == {
        "x/npu/est_latency_ms": "missing",
        "s": "pass",
        "y/size_bytes": "new",
    }
    assert res.diffs[0].status == "missing" and res.exit_code == EXIT_REGRESSION
    assert _cmp(report([fig("s"), fig("y/size_bytes")]), report([fig("s")])).passed


def test_incompatible_kind_or_unit_fails():
    res = _cmp(report([fig("s", unit="KiB")]), report([fig("s", unit="B")]))
    assert _status(res, "s") == "incompatible" and not res.passed


def test_measured_calibration_name_change_is_incompatible():
    rng = np.random.default_rng(0)
    base, cur = latency_report(*ci_job(rng, 10.0)), latency_report(*ci_job(rng, 10.0))
    cur["calibration"]["name"] = "other-bench"
    res = _cmp(cur, base)
    assert _status(res, "m/host_latency_ms") == "incompatible"


def test_few_samples_are_never_failed():
    rng = np.random.default_rng(1)
    m, c = ci_job(rng, 10.0, machine=1.0, n=3)
    base = latency_report(m, c)
    cur = latency_report(m * 2.0, c)
    res = _cmp(cur, base)
    d = next(d for d in res.diffs if d.key == "m/host_latency_ms")
    assert d.status == "suspect" and "need 5 per side" in d.detail and res.passed


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("schema"), "schema"),
        (lambda r: r.pop("figures"), "figures"),
        (lambda r: r["figures"][0].pop("kind"), "figures[0].kind"),
        (lambda r: r["figures"][0].update(kind="fuzzy"), "figures[0].kind"),
        (lambda r: r["figures"][0].update(value="fast"), "figures[0].value"),
        (lambda r: r["figures"][0].update(samples=[1.0, -2.0]), "figures[0].samples[1]"),
        (lambda r: r.pop("calibration"), "calibration"),
        (lambda r: r["calibration"].pop("median_s"), "calibration.median_s"),
        (lambda r: r["figures"].append(dict(r["figures"][0])), "figures[2].key"),
    ],
)
def test_schema_errors_name_file_and_field(mutate, field):
    rng = np.random.default_rng(2)
    r = latency_report(*ci_job(rng, 10.0))
    mutate(r)
    with pytest.raises(ConfigError) as e:
        parse_figures(r, "dist/x/report.json")
    assert e.value.source == "dist/x/report.json" and e.value.field == field


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(DataError, match="nope.json"):
        load_figures_file(tmp_path / "nope.json")
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ConfigError, match="b.json"):
        load_figures_file(tmp_path / "b.json")


def test_markdown_table_sorted_regressions_first():
    base = report([fig("a", value=100), fig("b", value=100), fig("c", value=100), fig("gone", value=1)])
    cur = report([fig("a", value=90), fig("b", value=150), fig("c", value=110), fig("new", value=1)])
    md = render_markdown(_cmp(cur, base))
    rows = [line for line in md.splitlines() if line.startswith("| :")]
    assert [r.split("|")[1].strip() for r in rows] == [
        ":x: missing",
        ":x: regression",
        ":x: regression",
        ":rocket: improved",
        ":new: new",
    ]
    assert "+50.00%" in rows[1] and "+10.00%" in rows[2] and "REGRESSION" in md and "--update-baseline" in md


def _write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def test_cli_exit_codes_and_update_baseline(tmp_path):
    rng = np.random.default_rng(3)
    m, c = ci_job(rng, 10.0, machine=1.0)
    base = _write(tmp_path, "base.json", latency_report(m, c))
    same = _write(tmp_path, "same.json", latency_report(*ci_job(rng, 10.0, machine=1.5)))
    slow = _write(tmp_path, "slow.json", latency_report(*ci_job(rng, 13.0, machine=1.0)))
    run = CliRunner().invoke
    r = run(cli, ["gate", "--report", same, "--baseline", base])
    assert r.exit_code == EXIT_PASS, r.output
    assert "| status | figure |" in r.output
    summary = tmp_path / "summary.md"
    r = run(
        cli,
        [
            "gate",
            "--report",
            slow,
            "--baseline",
            base,
            "--markdown",
            str(summary),
            "--json",
            str(tmp_path / "res.json"),
        ],
    )
    assert r.exit_code == EXIT_REGRESSION and ":x: regression" in summary.read_text()
    assert json.loads((tmp_path / "res.json").read_text())["exit_code"] == EXIT_REGRESSION
    r = run(cli, ["gate", "--report", str(tmp_path / "absent.json"), "--baseline", base])
    assert r.exit_code == EXIT_ERROR and "absent.json" in r.output
    r = run(cli, ["gate", "--report", slow, "--baseline", base, "--tolerance", "ten"])
    assert r.exit_code == EXIT_ERROR and "tolerance" in r.output
    # A 60% tolerance accepts the 30% slowdown.
    assert run(cli, ["gate", "--report", slow, "--baseline", base, "--tolerance", "60%"]).exit_code == EXIT_PASS
    # Accept the slowdown: the baseline becomes the slow report, and the gate passes against it.
    r = run(cli, ["gate", "--report", slow, "--baseline", base, "--update-baseline"])
    assert r.exit_code == EXIT_PASS, r.output
    written = json.loads(Path(base).read_text())
    assert written["schema"] == "projdeploy.gate-baseline/1" and len(written["figures"]) == 2
    assert run(cli, ["gate", "--report", slow, "--baseline", base]).exit_code == EXIT_PASS
    # A first baseline can be created from nothing; no temp files are left behind.
    fresh = tmp_path / "ci" / "fresh.json"
    assert run(cli, ["gate", "--report", slow, "--baseline", str(fresh), "--update-baseline"]).exit_code == 0
    assert fresh.is_file() and not [p for p in fresh.parent.iterdir() if p.name.startswith(".")]


def test_tolerance_parsing():
    from projdeploy.commands.gate import parse_tolerance

    assert parse_tolerance("10%") == pytest.approx(0.10)
    assert parse_tolerance("0.25") == pytest.approx(0.25)
    assert parse_tolerance("150%") == pytest.approx(1.5)
    for bad in ("10", "-5%", "x"):
        with pytest.raises(ConfigError):
            parse_tolerance(bad)


def test_throughput_like_measured_figure_uses_its_direction():
    rng = np.random.default_rng(4)
    m, c = ci_job(rng, 10.0, machine=1.0)
    m2, c2 = ci_job(rng, 13.0, machine=1.0)

    def thr(ms, cal):
        return report(
            [
                fig(
                    "m/tok_s",
                    "tokens_per_s",
                    float(np.median(1e3 / ms)),
                    "measured",
                    hib=True,
                    unit="tok/s",
                    samples=1e3 / ms,
                )
            ],
            cal,
        )

    res = _cmp(thr(m2, c2), thr(m, c))  # 30% more time per token = fewer tokens/s
    d = res.diffs[0]
    assert d.status == "regression" and d.change < -0.15
    assert _status(_cmp(thr(m, c2), thr(m2, c)), "m/tok_s") == "improved"


def test_workflow_calls_the_real_cli_options():
    """The shipped workflow uses options the gate command has, on the paths the baselines README names."""
    import re
    from pathlib import Path

    import yaml

    from projdeploy.commands.gate import cli as gate_cli

    root = Path(__file__).resolve().parents[1]
    wf = yaml.safe_load((root / ".github/workflows/latency-gate.yml").read_text())
    runs = "\n".join(s.get("run", "") for s in wf["jobs"]["gate"]["steps"])
    assert "make setup" in runs and "projdeploy build --task digits-cls --target linux --out dist" in runs
    known = {opt for p in gate_cli.params for opt in p.opts}
    for call in re.findall(r"projdeploy gate ([^\n]*(?:\\\n[^\n]*)*)", runs):
        used = set(re.findall(r"(--[a-z-]+)", call))
        assert used and used <= known, used - known
    env = wf["jobs"]["gate"]["env"]
    assert env["REPORT"] == "dist/digits-cls-linux/report.json"
    assert env["BASELINE"] == "ci/baselines/digits-cls-linux.json"
    assert "GITHUB_STEP_SUMMARY" in runs
    assert env["BASELINE"].split("/")[-1] in (root / "ci/baselines/README.md").read_text()
