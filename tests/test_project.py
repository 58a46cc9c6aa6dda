"""Projection: projector operator vs truncation, determinism, one-shot checkpoints, clear errors."""

import json

import pytest
import torch

from projdeploy.errors import CheckpointError, DataError, UnknownNameError
from projdeploy.models import config_for


@pytest.fixture(scope="module")
def projector_dir(tmp_path_factory):
    from projdeploy.project.projector import pretrain_projector

    out = tmp_path_factory.mktemp("proj") / "projector"
    pretrain_projector("digits", "tiny", out, steps=3, progress=False, ckpt_every=0)
    return out


def test_operator_at_init_is_truncation():
    from projdeploy.project.projector import ProjectorConfig, ProjectorModel
    from projdeploy.project.truncate import truncate_model

    big = config_for("tiny", 19, hidden_size=128, intermediate_size=384, max_position_embeddings=16)
    m = ProjectorModel(big, ProjectorConfig(), ["a", "b"], seed=0)
    x = torch.randint(0, 19, (2, 10), generator=torch.Generator().manual_seed(0))
    gen = m.op.materialise(m.big, m.op.task_emb[1])
    trunc = truncate_model(m.big, m.op.small_cfg)
    assert torch.equal(gen(x), trunc(x))
    assert gen.config.hidden_size == 64 and gen.config.resolved_head_dim == 16


def test_operator_at_init_is_truncation_with_head_selection():
    # the tiny preset's big model: 8 query / 4 key-value heads of the small head size -> 4 / 2 kept
    from projdeploy.project.projector import ProjectorConfig, ProjectorModel
    from projdeploy.project.truncate import truncate_model

    big = config_for(
        "tiny",
        19,
        hidden_size=128,
        intermediate_size=384,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=16,
    )
    m = ProjectorModel(big, ProjectorConfig(), ["a"], seed=0)
    x = torch.randint(0, 19, (2, 10), generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.op.materialise(m.big, m.op.task_emb[0])(x), truncate_model(m.big, m.op.small_cfg)(x))


@torch.no_grad()
def test_truncation_keeps_the_function_of_the_kept_heads():
    # a big model whose dropped heads write nothing (zero o_proj columns) computes exactly what its
    # truncation computes: checks the query-head / key-value-head (GQA) pairing of the selection
    from projdeploy.models import build_model
    from projdeploy.project.truncate import head_maps, truncate_model

    big_cfg = config_for(
        "tiny", 19, num_attention_heads=8, num_key_value_heads=4, head_dim=16, max_position_embeddings=16
    )
    small_cfg = big_cfg.replace(num_attention_heads=4, num_key_value_heads=2)
    qh, kvh = head_maps(big_cfg, small_cfg)
    assert qh.tolist() == [0, 1, 2, 3] and kvh.tolist() == [0, 1]
    qh, _ = head_maps(big_cfg, big_cfg.replace(num_attention_heads=2, num_key_value_heads=2))
    assert qh.tolist() == [0, 2]  # the first query head of each kept group
    big = build_model(big_cfg, seed=3)
    for layer in big.model.layers:
        layer.self_attn.o_proj.weight.view(64, 8, 16)[:, 4:] = 0.0
        # scramble the dropped heads' query/key/value weights: they must not matter
        layer.self_attn.q_proj.weight.view(8, 16, 64)[4:] *= 7.0
    small = truncate_model(big, small_cfg)
    x = torch.randint(0, 19, (2, 12), generator=torch.Generator().manual_seed(1))
    assert (small(x) - big(x)).abs().max().item() < 1e-5
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in big.parameters())


def test_truncation_keeps_rope_pairs():
    from projdeploy.project.truncate import rope_channels

    assert rope_channels(32, 16).tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]
    assert rope_channels(16, 16).tolist() == list(range(16))


def test_depth_mix_starts_on_segments():
    from projdeploy.project.projector import Operator, ProjectorConfig
    from projdeploy.project.truncate import small_config_for

    big = config_for("small", 19)  # L=4 -> tiny L=2
    op = Operator(big, small_config_for(big, "tiny"), ProjectorConfig(), 3)
    A = op.depth_mix()
    assert A.shape == (2, 4) and torch.allclose(A.sum(1), torch.ones(2))
    assert A[0, :2].min() > 0.45 and A[1, 2:].min() > 0.45


def test_generation_is_deterministic_and_one_shot(projector_dir, tmp_path):
    from projdeploy.models.checkpoint import load_model, read_meta
    from projdeploy.project.api import project
    from projdeploy.project.projector import load_projector

    m1, m2 = load_projector(projector_dir), load_projector(projector_dir)
    s1 = m1.op.generate(m1.big, m1.op.task_emb[7])
    s2 = m2.op.generate(m2.big, m2.op.task_emb[7])
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    info = project(projector_dir, "digits:7", "projector", tmp_path / "a")
    project(projector_dir, "digits:7", "projector", tmp_path / "b")
    assert info["mode"] == "one-shot"
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(a.state_dict()["model.layers.0.mlp.up_proj.weight"], s1["model.layers.0.mlp.up_proj.weight"])
    assert read_meta(tmp_path / "a")["projection"]["method"] == "projector"
    assert (tmp_path / "a" / "projdeploy_tokenizer.json").is_file()


@pytest.mark.parametrize("method", ["projector", "truncate"])
def test_projected_checkpoint_loads_in_transformers_with_identical_logits(projector_dir, tmp_path, method):
    from transformers import AutoModelForCausalLM

    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project
    from projdeploy.tasks import get_task

    project(projector_dir, "digits:7", method, tmp_path / method)
    ours = load_model(tmp_path / method)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / method).eval()
    x = torch.as_tensor(get_task("digits:7").eval.tokens[:4, :-1])
    with torch.no_grad():
        assert (hf(x).logits - ours(x)).abs().max().item() < 1e-4
    assert ours.config.hidden_size == 64 and ours.config.num_attention_heads == 4


def test_new_task_fits_only_the_embedding(projector_dir):
    from projdeploy.project.projector import project_projector
    from projdeploy.tasks import get_task

    before = {
        k: v.clone()
        for k, v in __import__("projdeploy.project.projector", fromlist=["x"])
        .load_projector(projector_dir)
        .state_dict()
        .items()
    }
    small, info = project_projector(projector_dir, get_task("digits:0-4").with_train_limit(32), fit_steps=3)
    assert info["mode"] == "fitted-embedding"
    from projdeploy.project.projector import load_projector

    after = load_projector(projector_dir).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing written back
    assert small.config.hidden_size == 64


def test_classification_task_gets_a_classifier(projector_dir, tmp_path):
    from projdeploy.models.checkpoint import load_model
    from projdeploy.project.api import project

    project(projector_dir, "digits-cls", "truncate", tmp_path / "c")
    m = load_model(tmp_path / "c")
    assert m.config.is_classifier and m.config.num_labels == 10


def test_bad_inputs_give_clear_errors(projector_dir, tmp_path, tiny_lm_checkpoint):
    from projdeploy.project.api import project, project_model
    from projdeploy.project.methods import METHODS
    from projdeploy.tasks import get_task

    with pytest.raises(UnknownNameError, match="known projection methods: " + ", ".join(sorted(METHODS))):
        project(projector_dir, "digits:7", "distill", tmp_path / "x")
    with pytest.raises(CheckpointError, match="does not exist"):
        project(tmp_path / "nope", "digits:7", "truncate", tmp_path / "x")
    with pytest.raises(CheckpointError, match="not a projector"):
        project(tiny_lm_checkpoint, "digits:7", "projector", tmp_path / "x")
    empty = get_task("digits:7").with_train_limit(0)
    with pytest.raises(DataError, match="no training data"):
        project_model(projector_dir, empty, "truncate")
    pn_like = tmp_path / "pn"
    pn_like.mkdir()
    (pn_like / "projdeploy.json").write_text(json.dumps({"kind": "pn"}))
    with pytest.raises(CheckpointError, match="use --method pn"):
        project(pn_like, "digits:7", "truncate", tmp_path / "x")
    with pytest.raises(CheckpointError, match="cannot project"):  # tiny -> tiny is fine; base is wider
        project(tiny_lm_checkpoint, "digits:7", "truncate", tmp_path / "x", size="base")
    assert not (tmp_path / "x").exists()
