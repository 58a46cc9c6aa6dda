"""PN projection: expert choice, closed-form materialisation equal to the expert inside the big model."""

import json

import numpy as np
import pytest
import torch

from projdeploy.errors import CheckpointError, UnknownNameError
from projdeploy.project.pn import project_pn, save_projected
from projdeploy.tasks import get_task


@pytest.fixture(scope="module")
def pn_dirs(tmp_path_factory):
    from projdeploy.train.pretrain import pretrain

    root = tmp_path_factory.mktemp("pn")
    pretrain("pn", "digits", "tiny", root / "pn", steps=20, progress=False, eval_every=0, ckpt_every=0)
    pretrain("hard-moe", "digits", "tiny", root / "moe", steps=3, progress=False, eval_every=0, ckpt_every=0)
    return root / "pn", root / "moe"


@pytest.mark.parametrize("which", [0, 1])
def test_projected_model_equals_expert_inside_big_model(pn_dirs, which, tmp_path):
    from projdeploy.models.projected import load_pn

    big = pn_dirs[which]
    task = get_task("digits:7")
    small, info = project_pn(big, task)
    counts = np.asarray(info["cluster_counts"])
    assert info["expert"] == counts.argmax() and counts.sum() == len(task.train)
    pn = load_pn(big)
    x = torch.as_tensor(task.eval.tokens[:8, :-1])
    with torch.no_grad():
        assert (small(x) - pn(x, info["expert"])).abs().max().item() < 1e-5
    # an ordinary small checkpoint that loads in transformers with the same logits
    out = save_projected(small, task, tmp_path / "small", info)
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        assert (hf(x).logits - small(x)).abs().max().item() < 1e-4
    assert json.loads((out / "projdeploy.json").read_text())["projection"]["expert"] == info["expert"]


def test_sampled_cluster_counts_pick_the_same_expert(pn_dirs):
    task = get_task("digits:7")
    _, full = project_pn(pn_dirs[0], task, max_units=None)
    _, sampled = project_pn(pn_dirs[0], task, max_units=40)
    assert sum(sampled["cluster_counts"]) == 40 < sum(full["cluster_counts"])
    assert sampled["expert"] == full["expert"]


def test_lowest_loss_rule_and_coefficient_tuning(pn_dirs):
    task = get_task("digits:0-4").with_train_limit(128)
    _, info = project_pn(pn_dirs[0], task, rule="lowest-loss")
    assert info["expert"] == int(np.argmin(info["expert_losses"]))
    tuned, info2 = project_pn(pn_dirs[0], task, rule="lowest-loss", tune_coefficients_steps=15, seed=0)
    assert info2["tune_loss_after"] < info2["tune_loss_before"]
    assert tuned.config.hidden_size == 64 and tuned.config.num_labels == 0


def test_bad_inputs(pn_dirs, tmp_path):
    with pytest.raises(UnknownNameError, match="most-frequent"):
        project_pn(pn_dirs[0], "digits:7", rule="best")
    with pytest.raises(CheckpointError, match="different tokenizer"):
        project_pn(pn_dirs[0], get_task("pycode:json"))
    with pytest.raises(CheckpointError, match="does not exist"):
        project_pn(tmp_path / "nope", "digits:7")
