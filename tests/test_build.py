"""``projdeploy build`` end to end on a tiny configuration, the stage cache, --dry-run, --force."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from projdeploy.cli import cli


@pytest.fixture(scope="module")
def big_pn(tmp_path_factory):
    """A PN big model pretrained for a handful of steps (the build's --big)."""
    from projdeploy.train.pretrain import pretrain

    out = tmp_path_factory.mktemp("big") / "pn"
    pretrain("pn", "digits", "tiny", out, steps=8, progress=False)
    return out


def _build(*extra, cache, out):
    args = [
        "build",
        "--task",
        "digits-cls",
        "--target",
        "web",
        "--finetune-steps",
        "5",
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
        *extra,
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.mark.slow
def test_build_end_to_end_then_cached(tmp_path, big_pn):
    cache, out = tmp_path / "cache", tmp_path / "dist"
    r = _build("--big", str(big_pn), cache=cache, out=out)
    assert r.exit_code in (0, 1), r.output  # 1 = a budget failed; the build itself completed
    d = out / "digits-cls-web"
    for f in ("manifest.json", "report.json", "report.html", "sdk", "model/config.json"):
        assert (d / f).exists(), f
    m = json.loads((d / "manifest.json").read_text())
    assert [a["key"] for a in m["artifacts"]] == ["onnx/int8-dynamic"]
    assert all(not s["cached"] for s in m["stages"] if s["stage"] != "pretrain (given --big)")
    assert "| artifact |" in r.output and "onnx/int8-dynamic" in r.output
    report = json.loads((d / "report.json").read_text())
    assert report["schema"] == "projdeploy.report/1" and report["figures"]

    # nothing changed: every stage is a cache hit and the output is re-assembled
    r2 = _build("--big", str(big_pn), cache=cache, out=out)
    assert r2.exit_code == r.exit_code
    m2 = json.loads((d / "manifest.json").read_text())
    assert all(s["cached"] for s in m2["stages"])
    assert m2["artifacts"] == m["artifacts"]

    # dry run: the plan, all cached
    r3 = _build("--big", str(big_pn), "--dry-run", cache=cache, out=out)
    assert r3.exit_code == 0 and "would run" not in r3.output and r3.output.count("cached") >= 5

    # --force finetune re-runs finetune and everything after it, not project
    r4 = _build("--big", str(big_pn), "--force", "finetune", "--dry-run", cache=cache, out=out)
    lines = {ln.split()[1]: ln for ln in r4.output.splitlines() if ln.startswith("[")}
    assert "cached" in lines["project"] and "would run" in lines["finetune"]
    assert "would run" in lines["export"] and "would run" in lines["check"]


def test_build_bad_inputs(tmp_path):
    r = CliRunner().invoke(cli, ["build", "--task", "digits-cls", "--target", "watchos", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "known targets" in r.output
    r = CliRunner().invoke(cli, ["build", "--task", "nope", "--target", "ios", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "known tasks" in r.output
    r = CliRunner().invoke(
        cli,
        [
            "build",
            "--task",
            "digits-cls",
            "--big",
            str(tmp_path / "missing"),
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert r.exit_code == 2 and "does not exist" in r.output
    assert not (tmp_path / "d").exists()
