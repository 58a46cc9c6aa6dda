"""Training loop: exact resume, config-mismatch refusal, atomic checkpoints, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from projdeploy.errors import CheckpointError
from projdeploy.train.loop import TrainConfig, batch_indices
from projdeploy.train.small import train_small

CFG = TrainConfig(steps=12, batch_size=16, eval_every=6, warmup_steps=2)


def test_batches_are_a_pure_function_of_seed_and_step():
    a = [batch_indices(100, 16, 3, s) for s in range(12)]
    b = [batch_indices(100, 16, 3, s) for s in range(12)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    epoch0 = np.concatenate(a[:6])
    assert len(set(epoch0.tolist())) == 96  # no row repeats inside an epoch


class _Stop(Exception):
    pass


def test_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    import dataclasses

    from projdeploy.train import hooks as loop  # the checkpoint hook writes the files

    _, _, full = train_small("digits:0-4", "tiny", tmp_path / "full", CFG, progress=False)
    # Interrupt a run right after its first periodic checkpoint (step 6) is renamed into place.
    cfg = dataclasses.replace(CFG, ckpt_every=6)
    orig = loop.atomic_dir

    class StopAfterWrite:
        def __init__(self, final, overwrite=True):
            self.cm = orig(final, overwrite)

        def __enter__(self):
            return self.cm.__enter__()

        def __exit__(self, *exc):
            self.cm.__exit__(*exc)
            if exc[0] is None:
                raise _Stop()

    out = tmp_path / "killed"
    monkeypatch.setattr(loop, "atomic_dir", StopAfterWrite)
    with pytest.raises(_Stop):
        train_small("digits:0-4", "tiny", out, cfg, progress=False)
    monkeypatch.setattr(loop, "atomic_dir", orig)
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 6
    _, _, resumed = train_small("digits:0-4", "tiny", out, cfg, resume=True, progress=False)
    # ckpt_every is part of the identity of the resumed run, not of the loss curve
    assert resumed.losses == full.losses
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [e["value"] for e in resumed.evals] == [e["value"] for e in full.evals]


def test_resume_with_other_config_fails_and_overwrites_nothing(tmp_path):
    out = tmp_path / "run"
    train_small("digits:0-4", "tiny", out, CFG, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import dataclasses

    with pytest.raises(CheckpointError, match="lr"):
        train_small("digits:0-4", "tiny", out, dataclasses.replace(CFG, lr=1e-3), resume=True, progress=False)
    with pytest.raises(CheckpointError, match="hidden_size"):
        train_small("digits:0-4", "small", out, CFG, resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no trainer state"):
        train_small("digits:0-4", "tiny", tmp_path / "none", CFG, resume=True, progress=False)


def test_failed_write_leaves_nothing(tmp_path):
    from projdeploy.fsutil import atomic_dir

    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as d:
            (d / "half.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_classifier_trains_above_chance(tmp_path):
    from projdeploy.tasks.metrics import evaluate

    model, task, res = train_small(
        "digits-cls", "tiny", tmp_path / "c", TrainConfig(steps=60, eval_every=0, warmup_steps=5), progress=False
    )
    assert res.losses[-1] < res.losses[0]
    assert evaluate(model, task)["accuracy"] > 0.25  # chance is 0.10


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from projdeploy.fsutil import atomic_dir, atomic_write_text

    mask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("x")
        atomic_write_text(tmp_path / "t.txt", "y")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o644
