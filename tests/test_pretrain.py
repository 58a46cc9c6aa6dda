"""`projdeploy pretrain`: FLOP budgets, checkpoint contents, clear resume errors, exact resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from projdeploy.errors import CheckpointError
from projdeploy.tasks import get_task
from projdeploy.train.presets import get_preset
from projdeploy.train.pretrain import build, flop_budget, pretrain


def test_equal_flop_budget_across_model_kinds():
    task, p = get_task("digits"), get_preset("tiny")
    budget = flop_budget(task, p)
    per_step = {
        k: 3 * build(k, task, p, 0)[2] * p.batch_size * task.seq_len for k in ("slm", "pn", "hard-moe", "dense")
    }
    steps = {k: int(budget // v) for k, v in per_step.items()}
    assert steps["slm"] == p.small_steps
    assert steps["dense"] < steps["pn"] <= steps["slm"]  # the wider model affords fewer steps
    for k in steps:
        assert budget - per_step[k] < steps[k] * per_step[k] <= budget


def test_pn_checkpoint_contents_and_clear_resume_error(tmp_path):
    out = tmp_path / "pn"
    res = pretrain("pn", "digits", "tiny", out, steps=6, progress=False, eval_every=3, ckpt_every=0)
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "clusters.json",
        "clusters.safetensors",
        "projdeploy_tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
        "projdeploy.json",
    } <= names
    assert res["eval"]["metric"] == "bits_per_dim" and res["flops"] > 0 and len(res["evals"]) == 2
    assert json.loads((out / "config.json").read_text())["num_experts"] == 8
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(CheckpointError, match="configuration differs"):
        pretrain("pn", "digits", "tiny", out, steps=6, progress=False, resume=True, lr=1e-3)
    with pytest.raises(CheckpointError, match="configuration differs"):
        pretrain("hard-moe", "digits", "tiny", out, steps=6, progress=False, resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_reports_unknown_preset(tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    r = CliRunner().invoke(
        cli, ["pretrain", "--model", "dense", "--preset", "huge", "--data", "digits", "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 2 and "'huge'" in r.output  # the CLI's choices are the preset registry's names
    assert all(f"'{p}'" in r.output for p in ("tiny", "small", "base"))
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_exact_resume_after_kill(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        "-m",
        "projdeploy.cli",
        "pretrain",
        "--model",
        "pn",
        "--data",
        "digits",
        "--steps",
        "16",
        "--ckpt-every",
        "3",
        "--eval-every",
        "0",
        "--quiet",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--out", str(killed)], env=env, start_new_session=True)
    state = killed / "trainer_state.json"
    deadline = time.time() + 50
    while not state.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    step = json.loads(state.read_text())["step"]
    assert 0 < step < 16, step  # really interrupted mid-run
    subprocess.run(args + ["--out", str(killed), "--resume"], env=env, check=True)
    full = tmp_path / "full"  # the uninterrupted run, in this process (one thread, like the subprocesses)
    pretrain("pn", "digits", "tiny", full, steps=16, ckpt_every=3, eval_every=0, progress=False)
    a, b = load_file(str(killed / "model.safetensors")), load_file(str(full / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_projector_is_delegated_or_fails_clearly(monkeypatch, tmp_path):
    from projdeploy.errors import ConfigError

    monkeypatch.setitem(sys.modules, "projdeploy.project.projector", None)  # as if not installed
    with pytest.raises(ConfigError, match="'projector' is not available"):
        pretrain("projector", "digits", "tiny", tmp_path / "p")
