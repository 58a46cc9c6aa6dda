"""The CLI through click's runner, and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from projdeploy.cli import COMMANDS, available_commands, cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_commands():
    r = run("--help")
    assert r.exit_code == 0
    for name in available_commands():
        assert name in r.output


def test_every_command_module_exports_a_click_command():
    import importlib

    import click

    for name in available_commands():
        mod = importlib.import_module(f"projdeploy.commands.{name.replace('-', '_')}")
        assert isinstance(mod.cli, click.Command) and mod.cli.name == name
    assert set(available_commands()) <= set(COMMANDS)


def test_tasks_list_and_show():
    r = run("tasks", "list")
    assert r.exit_code == 0 and "digits:0-4" in r.output and "pycode:email" in r.output
    r = run("tasks", "show", "digits-cls")
    assert r.exit_code == 0 and json.loads(r.output)["labels"] == [str(i) for i in range(10)]


def test_unknown_task_is_a_clean_error():
    r = CliRunner().invoke(cli, ["tasks", "show", "nope"])
    assert r.exit_code == 2 and "known tasks" in r.output and "Traceback" not in r.output


def test_train_then_eval(tmp_path):
    out = tmp_path / "ckpt"
    r = run("train", "--task", "digits:7", "--size", "tiny", "--steps", "8", "--out", str(out), "--eval-every", "4")
    assert r.exit_code == 0, r.output
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    r = run("eval", "--checkpoint", str(out), "--task", "digits:7", "--out", str(tmp_path / "m.json"))
    assert r.exit_code == 0 and "bits_per_dim" in r.output and "baseline" in r.output
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["metric"] == "bits_per_dim" and res["value"] > 0
    # a classifier checkpoint cannot be evaluated on an LM task: clear error, nothing written
    r = CliRunner().invoke(
        cli, ["eval", "--checkpoint", str(out), "--task", "digits-cls", "--out", str(tmp_path / "bad.json")]
    )
    assert r.exit_code == 2 and "cannot be evaluated" in r.output
    assert not (tmp_path / "bad.json").exists()


def test_missing_checkpoint_and_bad_task_file(tmp_path):
    r = CliRunner().invoke(cli, ["eval", "--checkpoint", str(tmp_path / "nope"), "--task", "digits"])
    assert r.exit_code == 2 and "does not exist" in r.output
    bad = tmp_path / "t.yaml"
    bad.write_text("name: x\ntype: video\ndata: {train: a}\n")
    r = CliRunner().invoke(cli, ["tasks", "show", str(bad)])
    assert r.exit_code == 2 and "t.yaml" in r.output and "'type'" in r.output and "text-lm" in r.output


def test_real_subprocess():
    exe = Path(sys.executable).with_name("projdeploy")
    p = subprocess.run([str(exe), "tasks", "show", "nope"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "error: unknown task 'nope'" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "pipeline" in p.stdout.lower()
