"""Small transformer: HF parity, checkpoint round-trip, config validation, golden losses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from projdeploy.errors import CheckpointError, ConfigError
from projdeploy.models import ModelConfig, build_model, config_for
from projdeploy.models.checkpoint import load_model, write_model_files

VARIANTS = {
    "gqa": dict(),
    "mha-tied": dict(num_key_value_heads=4, tie_word_embeddings=True),
    "mqa-headdim": dict(num_key_value_heads=1, head_dim=8),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_causal_lm_matches_transformers(tmp_path, variant):
    from transformers import AutoModelForCausalLM

    cfg = config_for("tiny", 37, max_position_embeddings=32, **VARIANTS[variant])
    model = build_model(cfg, seed=1).eval()
    write_model_files(tmp_path, model)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 37, (3, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model(x), hf(x).logits
    assert (ours - theirs).abs().max().item() <= 1e-5
    mine = load_model(tmp_path)
    with torch.no_grad():
        assert torch.equal(mine(x), ours)


def test_classifier_matches_transformers_with_padding(tmp_path):
    from transformers import AutoModelForSequenceClassification

    cfg = config_for("tiny", 20, num_labels=3, pad_token_id=19, id2label={0: "a", 1: "b", 2: "c"})
    model = build_model(cfg, seed=2).eval()
    write_model_files(tmp_path, model)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 19, (4, 16), generator=torch.Generator().manual_seed(0))
    x[1, 10:] = 19  # right padding: pooled at the last real token
    x[2, 3:] = 19
    with torch.no_grad():
        assert (model(x) - hf(x).logits).abs().max().item() <= 1e-5
    assert json.loads((tmp_path / "config.json").read_text())["id2label"] == {"0": "a", "1": "b", "2": "c"}
    assert load_model(tmp_path).config.id2label == {0: "a", 1: "b", 2: "c"}


def test_checkpoint_never_uses_pickle(tmp_path):
    model = build_model(config_for("tiny", 19), seed=0)
    write_model_files(tmp_path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "projdeploy.json"]
    assert (tmp_path / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, not a pickle


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="gpt2"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("num_key_value_heads", 3, "divide"),
        ("hidden_size", 0, "positive"),
        ("num_labels", -1, ">= 0"),
    ],
)
def test_config_validation(field, value, match):
    kw = dict(vocab_size=10, hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    kw[field] = value
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**kw)


def test_param_count_matches_module():
    for kw in VARIANTS.values():
        cfg = config_for("tiny", 37, **kw)
        m = build_model(cfg)
        assert cfg.num_parameters() == sum(p.numel() for p in m.parameters())


# Golden numbers: first training losses of the deterministic tiny model on digits:0-4
# (seed 0, batch 32, lr 3e-3, torch 2.13.0 CPU, 1 thread). A change to the model, the data,
# the initialisation or the optimiser shows here first.
GOLDEN_LOSSES = [3.050907, 2.981327, 2.854510, 2.699466, 2.578660]


def test_golden_first_losses():
    from projdeploy.tasks import get_task
    from projdeploy.train.loop import TrainConfig, train_loop
    from projdeploy.train.losses import lm_loss, task_data
    from projdeploy.train.small import model_config_for_task

    task = get_task("digits:0-4")
    model = build_model(model_config_for_task(task, "tiny"), seed=0)
    res = train_loop(model, task_data(task), lm_loss, TrainConfig(steps=5, eval_every=0))
    np.testing.assert_allclose(res.losses, GOLDEN_LOSSES, atol=2e-4)
