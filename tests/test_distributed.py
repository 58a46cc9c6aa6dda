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
    _torchrun(["--model", "pn", "--data", "digits", "--steps", "3", "--eval-every", "0"], tmp_path / "two")
    _assert_follows(_one_process_runs(tmp_path), tmp_path / "two")


def _one_process_runs(tmp_path, steps=3):
    """1-process runs of 1..steps steps: their AdamW states are the steps=3 run's after each step (same first lrs)."""
    from projdeploy.train.pretrain import pretrain

    for s in range(1, steps + 1):
        res = pretrain("pn", "digits", "tiny", tmp_path / f"one{s}", steps=s, eval_every=0, progress=False)
        assert res["world_size"] == 1
    return [tmp_path / f"one{s}" for s in range(1, steps + 1)]


def _assert_follows(ones, two):
    """The 2-process run follows the 1-process one: gradients to float tolerance, weights in gradient units.

    An element-wise bound on the weights is ill-conditioned under AdamW: it steps lr * m/(sqrt(v) + eps), so a
    gradient noise d moves an element by ~lr * d / (sqrt(v) + eps). The gloo all-reduce sums in another order than
    the 1-process batch mean: d ~ 1e-10, an ulp of the largest gradients (~0.1), yet one element of the tiny PN
    preset with a step-1 gradient of -2.45e-9 (vs -2.53e-9 on 2 processes; AdamW's eps is 1e-8) moved 1.4e-5 apart.
    So the weight difference is multiplied back by the smallest sqrt(v_t) + eps over the steps (the 1-process
    run's, bias-corrected) and divided by lr * steps: a gradient difference, compared with the largest step-1
    gradient, like the first moments. Measured: 1.1e-6 (weights) and 1.1e-6 (moments) of it; 2e-2 and 5e-2 when
    only rank 0's gradient is used. A sum instead of a mean is invisible here and harmless: the pre-clip gradient
    norm is above grad_clip = 1, so clipping rescales both to the same gradient.
    """
    from projdeploy.train.loop import TrainConfig
    from projdeploy.train.presets import get_preset

    cfg, lr, eps, steps = TrainConfig(), get_preset("tiny").lr, 1e-8, len(ones)  # eps: torch AdamW's default
    opts = [load_file(str(d / "optimizer.safetensors")) for d in ones]
    opt2 = load_file(str(two / "optimizer.safetensors"))
    a, b, w1 = (load_file(str(d / "model.safetensors")) for d in (ones[-1], two, ones[0]))
    assert sorted(a) == sorted(b) == sorted({k.split("::")[0] for k in opts[0]})
    scale = max(opts[0][f"{k}::exp_avg"].abs().max().item() for k in a) / (1 - cfg.beta1)  # largest step-1 gradient
    m_diff = max((opts[-1][f"{k}::exp_avg"] - opt2[f"{k}::exp_avg"]).abs().max().item() for k in a)
    w_diff = 0.0
    for k in a:
        sq = torch.stack([o[f"{k}::exp_avg_sq"] / (1 - cfg.beta2**t) for t, o in enumerate(opts, 1)])
        w_diff = max(w_diff, ((a[k] - b[k]).abs() * (sq.amin(0).sqrt() + eps)).max().item() / (lr * steps))
    moved = max((a[k] - w1[k]).abs().max().item() for k in a)
    assert m_diff < 1e-5 * scale and w_diff < 1e-5 * scale, (m_diff, w_diff, scale)
    assert moved > 1e-4, moved  # steps 2 and 3 really moved the weights (3.4e-3)


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

    _torchrun(
        ["--model", "pn", "--data", "digits", "--steps", "3", "--eval-every", "0", "--strategy", "fsdp"],
        tmp_path / "two",
    )
    ones = _one_process_runs(tmp_path)
    _assert_follows(ones, tmp_path / "two")  # weights and first moments, as for DDP
    # full AdamW moments under the same flattened names as unsharded training
    assert _max_diff(ones[-1], tmp_path / "two", "optimizer.safetensors") < 1e-5
    one, two = load_pn(ones[-1]), load_pn(tmp_path / "two")  # the ordinary PN loader
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
