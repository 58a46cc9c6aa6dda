"""Growth warm-start through the commands: pretrain SLM -> grow to the preset's big model -> pretrain --init."""

import pytest
import torch


@pytest.mark.slow
def test_grown_big_model_continues_from_the_small_models_function(tmp_path):
    from projdeploy.models.checkpoint import load_model
    from projdeploy.models.grow import GrowTarget, grow_checkpoint
    from projdeploy.tasks import get_task
    from projdeploy.train.loop import batch_indices
    from projdeploy.train.losses import lm_loss
    from projdeploy.train.presets import get_preset
    from projdeploy.train.pretrain import model_configs, pretrain

    task = get_task("digits")
    pretrain("slm", "digits", "tiny", tmp_path / "slm", steps=4, eval_every=0, progress=False, seed=3)
    big = model_configs(task, get_preset("tiny"))["dense"]
    res = grow_checkpoint(
        tmp_path / "slm",
        GrowTarget(
            hidden_size=big.hidden_size,
            intermediate_size=big.intermediate_size,
            num_attention_heads=big.num_attention_heads,
            num_key_value_heads=big.num_key_value_heads,
        ),
        tmp_path / "grown",
    )
    assert res["hf_loadable"] and set(res["steps"]) == {"mlp", "heads", "hidden"}
    small = load_model(tmp_path / "slm")
    batch = {"tokens": torch.as_tensor(task.train.tokens[batch_indices(len(task.train), 32, 3, 0)])}
    with torch.no_grad():
        expected = float(lm_loss(small, batch))
    cont = pretrain(
        "dense",
        "digits",
        "tiny",
        tmp_path / "big",
        init=tmp_path / "grown",
        steps=3,
        eval_every=0,
        progress=False,
        seed=3,
    )
    assert abs(cont["losses"][0] - expected) < 1e-5  # the grown model computes the small model's function
    assert cont["params"] > res["params_before"]
