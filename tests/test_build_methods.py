"""Every ``build --method`` choice builds, and the CLI's choices are the registries' names."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from projdeploy.cli import cli


def _choices(command: str, option: str) -> list[str]:
    import importlib

    cmd = importlib.import_module(f"projdeploy.commands.{command}").cli
    (param,) = [p for p in cmd.params if p.name == option]
    assert isinstance(param.type, click.Choice), (command, option)
    return list(param.type.choices)


def test_cli_choices_are_the_registries():
    from exporters.registry import FORMATS, list_lm_recipes, list_recipes
    from projdeploy.build import STAGES
    from projdeploy.project.methods import METHODS
    from projdeploy.train.presets import PRESETS
    from projdeploy.train.pretrain import MODELS
    from projdeploy.transfer import TRANSFERS

    assert _choices("build", "method") == _choices("project", "method") == list(METHODS)
    assert _choices("build", "transfer") == _choices("finetune", "transfer") == list(TRANSFERS)
    assert _choices("build", "force") == list(STAGES)
    assert _choices("build", "preset") == _choices("pretrain", "preset") == list(PRESETS)
    assert _choices("pretrain", "model") == list(MODELS)
    assert _choices("export", "fmt") == list(FORMATS)
    assert set(_choices("export", "recipe")) == {r.name for r in [*list_recipes(), *list_lm_recipes()]}
    # every method pretrains a model kind that `pretrain` knows
    assert {m.pretrains for m in METHODS.values()} <= set(MODELS)


def test_target_and_profile_names_come_from_the_data_folders(tmp_path):
    from projdeploy.check.profiles import profile_names
    from projdeploy.targets import shipped_targets

    r = CliRunner().invoke(cli, ["build", "--help"])
    assert all(t in r.output for t in shipped_targets()) and all(p in r.output for p in profile_names())
    r = CliRunner().invoke(cli, ["build", "--task", "digits-cls", "--profile", "nokia-3310", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "known profiles" in r.output and not (tmp_path / "digits-cls-ios").exists()


def test_unknown_method_option_is_a_typed_error(tmp_path):
    from projdeploy.errors import ConfigError
    from projdeploy.project.api import project

    with pytest.raises(ConfigError, match="fit_steps"):
        project(tmp_path, "digits:7", "pn", tmp_path / "x", fit_steps=3)


TARGET = """name: tiny
description: one small ONNX artifact, no SDK (tests)
artifacts:
  - {format: onnx, recipe: fp32}
profiles: [x86-laptop]
sdk: null
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One target file and one stage cache for every method (truncate and prune share the dense pretraining)."""
    root = tmp_path_factory.mktemp("methods")
    (root / "tiny.yaml").write_text(TARGET)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pn", "hard-moe", "projector", "truncate", "prune"])
def test_build_runs_with_every_method(shared, method):
    """digits:7 is one of the projector's training tasks, so its projection is one-shot (fast)."""
    from projdeploy.project.methods import METHODS

    assert method in METHODS  # a new method must be added to the parametrisation
    out = shared / method
    args = ["build", "--task", "digits:7", "--target", str(shared / "tiny.yaml"), "--method", method]
    args += ["--pretrain-steps", "2", "--finetune-steps", "2", "--cache-dir", str(shared / "c"), "--out", str(out)]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output
    m = json.loads((out / "digits_7-tiny" / "manifest.json").read_text())
    assert m["options"]["method"] == method and [a["key"] for a in m["artifacts"]] == ["onnx/fp32"]
    (key,) = [s["key"] for s in m["stages"] if s["stage"] == "pretrain"]
    stage = json.loads((shared / "c" / "pretrain" / key / "stage.json").read_text())
    assert stage["material"]["model"] == METHODS[method].pretrains


def test_methods_parametrisation_is_complete():
    from projdeploy.project.methods import METHODS

    marks = test_build_runs_with_every_method.pytestmark
    (param,) = [m for m in marks if m.name == "parametrize"]
    assert param.args[1] == list(METHODS)
