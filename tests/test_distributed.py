"""torchrun with 2 CPU processes (gloo, DDP) follows the 1-process run with the same global batch."""

import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    from projdeploy.train.pretrain import pretrain

    args = ["--model", "pn", "--data", "digits", "--steps", "3", "--eval-every", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "projdeploy.cli", "pretrain", *args, "--out", str(tmp_path / "two")], env=env, check=True)
    pretrain("pn", "digits", "tiny", tmp_path / "one", steps=3, eval_every=0, progress=False)
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    init = pretrain("pn", "digits", "tiny", tmp_path / "short", steps=1, eval_every=0, progress=False)
    assert init["world_size"] == 1
    moved = max((a[k] - load_file(str(tmp_path / "short" / "model.safetensors"))[k]).abs().max().item() for k in a)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < 1e-5 < moved, (diff, moved)  # equal to float tolerance, while training really moved the weights
