"""Function-preserving growth: each expansion alone and all six composed keep outputs; state carried; keeps training."""

import json

import pytest
import torch

from projdeploy.errors import ConfigError
from projdeploy.models import ModelConfig, build_model
from projdeploy.models.grow import GrowTarget, grow_model

CFG = ModelConfig(
    vocab_size=19,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    rms_norm_eps=1e-2,
)  # a large eps: the eps rescale must be exact
CASES = {
    "mlp": dict(intermediate_size=96),
    "heads-per-group": dict(num_attention_heads=6),
    "heads-new-groups": dict(num_attention_heads=8, num_key_value_heads=4),
    "value": dict(v_head_dim=12),
    "key": dict(qk_head_dim=12),
    "hidden": dict(hidden_size=48),
    "layers": dict(num_hidden_layers=4, new_layer_positions=(0, 3)),
    "all-six": dict(
        intermediate_size=96,
        num_attention_heads=12,
        num_key_value_heads=4,
        v_head_dim=12,
        qk_head_dim=16,
        hidden_size=64,
        num_hidden_layers=3,
    ),
}


def _model():
    m = build_model(CFG, seed=0).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
    return m


@pytest.mark.parametrize("name", list(CASES))
def test_expansion_preserves_function(name):
    m = _model()
    ids = torch.randint(0, 19, (4, 24), generator=torch.Generator().manual_seed(1))
    grown, _, steps = grow_model(m, GrowTarget(**CASES[name], seed=3))
    with torch.no_grad():
        diff = (grown(ids) - m(ids)).abs().max().item()
    assert diff <= 1e-5, (name, diff)
    assert len(steps) == (6 if name == "all-six" else 1)
    # the new blocks are not all zero: both factors of every new path must be able to learn
    n_new = sum(p.numel() for p in grown.parameters()) - sum(p.numel() for p in m.parameters())
    assert n_new > 0


def test_wrong_rules_would_be_caught():
    """Negative controls: skipping a porting rule breaks preservation by far more than the tolerance."""
    from projdeploy.models.general import GeneralConfig
    from projdeploy.models.grow import Grower

    m = _model()
    ids = torch.randint(0, 19, (2, 16))
    base = GeneralConfig.from_model_config(CFG)
    g = Grower(base, m.state_dict())
    g.hidden(48)
    g.cfg = g.cfg.replace(rms_norm_eps=CFG.rms_norm_eps)  # forget the eps rescale
    from projdeploy.models.general import GeneralLM

    bad = GeneralLM(g.cfg)
    bad.load_state_dict(g.sd)
    with torch.no_grad():
        assert (bad(ids) - m(ids)).abs().max() > 1e-4
    g = Grower(base, m.state_dict())
    g.key(12)
    g.cfg = g.cfg.replace(rope_inv_freq=())  # standard frequencies for the grown head size
    bad = GeneralLM(g.cfg)
    bad.load_state_dict(g.sd)
    with torch.no_grad():
        assert (bad(ids) - m(ids)).abs().max() > 1e-3


def test_refusals_are_clear():
    m = _model()
    with pytest.raises(ConfigError, match="cannot shrink"):
        grow_model(m, GrowTarget(hidden_size=16))
    with pytest.raises(ConfigError, match="GQA"):
        grow_model(m, GrowTarget(num_attention_heads=8, num_key_value_heads=8))
    with pytest.raises(ConfigError, match="unknown field"):
        GrowTarget.from_dict({"width": 3})


def test_optimizer_state_is_carried():
    m = _model()
    opt = {}
    for n, p in m.named_parameters():
        opt[f"{n}::exp_avg"] = torch.randn(p.shape)
        opt[f"{n}::exp_avg_sq"] = torch.rand(p.shape)
        opt[f"{n}::step"] = torch.tensor(7.0)
    grown, opt2, _ = grow_model(m, GrowTarget(intermediate_size=96, num_hidden_layers=3), opt)
    k = "model.layers.1.mlp.down_proj.weight::exp_avg"
    assert torch.equal(opt2[k][:, :64], opt[k]) and opt2[k][:, 64:].abs().sum() == 0
    assert torch.equal(
        opt2["model.layers.0.mlp.gate_proj.weight::exp_avg_sq"][:64],
        opt["model.layers.0.mlp.gate_proj.weight::exp_avg_sq"],
    )
    assert "model.layers.2.mlp.up_proj.weight::exp_avg" not in opt2  # the new layer starts from zero state
    assert float(opt2["model.layers.1.self_attn.q_proj.weight::step"]) == 7.0


def test_grow_command_and_grown_model_keeps_training(tiny_lm_checkpoint, tmp_path):
    """Grow the trained fixture (hidden, MLP, heads, layers), continue training with its carried AdamW state."""
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from projdeploy.cli import cli
    from projdeploy.models.checkpoint import load_model
    from projdeploy.tasks import get_task
    from projdeploy.train.hooks import Checkpoints
    from projdeploy.train.loop import TrainConfig, train_loop
    from projdeploy.train.losses import lm_loss, task_data

    out = tmp_path / "grown"
    to = json.dumps({"hidden_size": 96, "intermediate_size": 256, "num_attention_heads": 6, "num_hidden_layers": 3})
    r = CliRunner().invoke(cli, ["grow", "--from", str(tiny_lm_checkpoint), "--to", to, "--out", str(out)])
    assert r.exit_code == 0, r.output
    small, grown = load_model(tiny_lm_checkpoint), load_model(out)  # HF layout: loads as an ordinary checkpoint
    task = get_task("digits:0-4")
    x = torch.as_tensor(task.eval.tokens[:16])
    with torch.no_grad():
        assert (grown(x[:, :-1]) - small(x[:, :-1])).abs().max() <= 1e-5
        start = float(lm_loss(grown, {"tokens": x}))
    opt = load_file(str(out / "optimizer.safetensors"))
    assert any(k.endswith("::exp_avg") for k in opt)
    cfg = TrainConfig(steps=25, batch_size=32, lr=1e-3, warmup_steps=0, eval_every=0, seed=5)
    res = train_loop(grown, task_data(task), lm_loss, cfg, hooks=[Checkpoints(None, None, init_optimizer_from=out)])
    grown.eval()
    with torch.no_grad():
        assert float(lm_loss(grown, {"tokens": x})) < start
    assert sum(res.losses[-5:]) / 5 < res.losses[0]


def test_general_block_checkpoint_when_not_hf_expressible(tiny_lm_checkpoint, tmp_path):
    from projdeploy.models.general import load_any_lm
    from projdeploy.models.grow import grow_checkpoint

    res = grow_checkpoint(tiny_lm_checkpoint, GrowTarget(v_head_dim=24), tmp_path / "g")
    assert not res["hf_loadable"] and "value head size" in res["reason"]
    model, opt = load_any_lm(tmp_path / "g")
    assert model.config.v_head_dim == 24 and opt
