"""Shared fixtures: tiny deterministic models and tasks; one torch thread per test worker."""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_lm_checkpoint(tmp_path_factory):
    """A 2-layer width-64 causal LM trained 30 steps on digits:0-4 (session-shared, read-only)."""
    from projdeploy.train.loop import TrainConfig
    from projdeploy.train.small import train_small

    out = tmp_path_factory.mktemp("ckpt") / "digits-lm"
    train_small("digits:0-4", "tiny", out, TrainConfig(steps=30, eval_every=0, warmup_steps=3), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cls_checkpoint(tmp_path_factory):
    """A 2-layer width-64 classifier trained 60 steps on digits-cls (session-shared, read-only)."""
    from projdeploy.train.loop import TrainConfig
    from projdeploy.train.small import train_small

    out = tmp_path_factory.mktemp("ckpt") / "digits-cls"
    train_small("digits-cls", "tiny", out, TrainConfig(steps=60, eval_every=0, warmup_steps=5), progress=False)
    return out
