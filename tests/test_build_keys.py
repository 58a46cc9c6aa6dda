"""Stage cache keys see what changes a stage's output: recipe fields, profile contents, budgets, source files.

Each case changes one thing and checks, with ``--dry-run`` (nothing runs), that exactly the stages after it
get new keys.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from projdeploy.build import Builder, BuildOptions, source_root

ALL = ("pretrain", "project", "finetune", "export", "check", "sdk")


def _keys(tmp_path, **opts) -> dict[str, str]:
    o = BuildOptions(task="digits-cls", target="web", cache_dir=str(tmp_path / "c"), dry_run=True, **opts)
    b = Builder(o, echo=lambda *_: None)
    b.run()
    return {r.name.split()[0]: r.key for r in b.records}


def _changed(a: dict, b: dict) -> tuple[str, ...]:
    assert a.keys() == b.keys() == set(ALL)
    return tuple(s for s in ALL if a[s] != b[s])


def test_keys_are_stable(tmp_path):
    assert _keys(tmp_path) == _keys(tmp_path)


def test_a_recipe_field_reruns_export_and_after(tmp_path, monkeypatch):
    from exporters.registry import get_format, get_recipe

    base = _keys(tmp_path)
    r = get_recipe("onnx", "int8-dynamic")
    monkeypatch.setitem(get_format("onnx").recipes, "int8-dynamic", dataclasses.replace(r, sqnr_floor_db=25.0))
    assert _changed(base, _keys(tmp_path)) == ("export", "check", "sdk")


def test_a_profile_number_reruns_check_only(tmp_path, monkeypatch):
    from projdeploy.check.profiles import profile_files

    base = _keys(tmp_path)
    user = tmp_path / "profiles"
    user.mkdir()
    text = profile_files()["x86-laptop"].read_text()
    edited = text.replace("memory_bandwidth_gbs: {value: 119.5", "memory_bandwidth_gbs: {value: 89.6", 1)
    assert edited != text
    (user / "x86-laptop.yaml").write_text(edited)
    monkeypatch.setenv("PROJDEPLOY_PROFILES", str(user))  # a user directory overrides the shipped name
    assert _changed(base, _keys(tmp_path)) == ("check",)


def test_a_budget_file_reruns_check_only(tmp_path):
    base = _keys(tmp_path)
    budget = tmp_path / "budget.yaml"
    budget.write_text("max_size_mb: 3\n")
    with_file = _keys(tmp_path, budget=str(budget))
    assert _changed(base, with_file) == ("check",)
    budget.write_text("max_size_mb: 4\n")
    assert _changed(with_file, _keys(tmp_path, budget=str(budget))) == ("check",)


def test_pretraining_settings_rerun_everything(tmp_path):
    base = _keys(tmp_path)
    assert _changed(base, _keys(tmp_path, pretrain_steps=7)) == ALL
    assert _changed(base, _keys(tmp_path, finetune_steps=7)) == ALL[2:]


@pytest.fixture
def source_copy(tmp_path, monkeypatch):
    """The projdeploy + exporters source copied to tmp; the builder hashes the copy."""
    root = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("projdeploy", "exporters"):
        shutil.copytree(source_root() / pkg, root / pkg, ignore=ignore)
    monkeypatch.setattr("projdeploy.build.source_root", lambda: root)
    return root


@pytest.mark.parametrize(
    "path, stages",
    [
        ("projdeploy/models/llama.py", ALL),
        ("projdeploy/project/pn.py", ALL),
        ("projdeploy/transfer/aft.py", ALL[2:]),
        ("exporters/onnx_export.py", ALL[3:]),
        ("projdeploy/check/estimator.py", ("check",)),
        ("projdeploy/sdk/render.py", ("sdk",)),
        ("projdeploy/sdk/versions.json", ("sdk",)),
    ],
)
def test_a_source_file_reruns_the_stages_that_run_it(tmp_path, source_copy, path, stages):
    base = _keys(tmp_path)
    with (source_copy / path).open("a") as f:
        f.write("\n")
    assert _changed(base, _keys(tmp_path)) == stages
