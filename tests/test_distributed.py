"""torchrun with 2 CPU processes (gloo; DDP and FSDP2) follows the 1-process run with the same global batch."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    from projdeploy.train.pretrain import pretrain

    args = ["--model", "pn", "--data", "digits", "--steps", "3", "--eval-every", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "projdeploy.cli",
            "pretrain",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        check=True,
    )
    pretrain("pn", "digits", "tiny", tmp_path / "one", steps=3, eval_every=0, progress=False)
    a, b = (
        load_file(str(tmp_path / "one" / "model.safetensors")),
        load_file(str(tmp_path / "two" / "model.safetensors")),
    )
    init = pretrain("pn", "digits", "tiny", tmp_path / "short", steps=1, eval_every=0, progress=False)
    assert init["world_size"] == 1
    moved = max((a[k] - load_file(str(tmp_path / "short" / "model.safetensors"))[k]).abs().max().item() for k in a)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < 1e-5 < moved, (diff, moved)  # equal to float tolerance, while training really moved the weights


def _torchrun(args, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "projdeploy.cli",
            "pretrain",
            *args,
            "--quiet",
            "--out",
            str(out),
        ],
        env=env,
        check=True,
    )


def _max_diff(a_dir, b_dir, name="model.safetensors"):
    a, b = load_file(str(a_dir / name)), load_file(str(b_dir / name))
    assert sorted(a) == sorted(b)
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.slow
def test_two_process_fsdp_matches_one_process_and_saves_full_checkpoint(tmp_path):
    """FSDP2 (gloo) shards blocks + root; the gathered checkpoint equals the 1-process one in names, shapes, values."""
    from projdeploy.models.projected import load_pn
    from projdeploy.train.pretrain import pretrain

    _torchrun(
        ["--model", "pn", "--data", "digits", "--steps", "3", "--eval-every", "0", "--strategy", "fsdp"],
        tmp_path / "two",
    )
    pretrain("pn", "digits", "tiny", tmp_path / "one", steps=3, eval_every=0, progress=False)
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-5
    # full AdamW moments under the same flattened names as unsharded training
    assert _max_diff(tmp_path / "one", tmp_path / "two", "optimizer.safetensors") < 1e-5
    one, two = load_pn(tmp_path / "one"), load_pn(tmp_path / "two")  # the ordinary PN loader
    x = torch.randint(0, 17, (2, 8))
    assert torch.allclose(one(x, 0), two(x, 0), atol=1e-4)


@pytest.mark.slow
def test_fsdp_resume_matches_single_process_resume(tmp_path):
    """A dense checkpoint resumed under FSDP (full state sharded back, AdamW moments included) follows 1 process."""
    from projdeploy.models.checkpoint import load_model
    from projdeploy.train.pretrain import pretrain

    pretrain("dense", "digits", "tiny", tmp_path / "base", steps=3, eval_every=0, ckpt_every=0, progress=False)
    for name in ("one", "two"):  # the step-3 weights and moments, rewound to continue from step 1
        shutil.copytree(tmp_path / "base", tmp_path / name)
        p = tmp_path / name / "trainer_state.json"
        s = json.loads(p.read_text())
        s.update(step=1, losses=s["losses"][:1])
        p.write_text(json.dumps(s))
    _torchrun(
        [
            "--model",
            "dense",
            "--data",
            "digits",
            "--steps",
            "3",
            "--eval-every",
            "0",
            "--ckpt-every",
            "0",
            "--strategy",
            "fsdp",
            "--resume",
        ],
        tmp_path / "two",
    )
    pretrain(
        "dense", "digits", "tiny", tmp_path / "one", steps=3, eval_every=0, ckpt_every=0, progress=False, resume=True
    )
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-5
    assert _max_diff(tmp_path / "one", tmp_path / "two", "optimizer.safetensors") < 1e-5
    moved = _max_diff(tmp_path / "base", tmp_path / "two")
    assert moved > 1e-4  # the two resumed steps really changed the weights
    a, b = load_model(tmp_path / "one"), load_model(tmp_path / "two")
    x = torch.randint(0, 17, (2, 8))
    assert torch.allclose(a(x), b(x), atol=1e-4)
