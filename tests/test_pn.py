"""Projected Network: parameterisation, hard-mixture equivalence, save/load, materialisation."""

import pytest
import torch

from projdeploy.errors import CheckpointError, ConfigError
from projdeploy.models import config_for
from projdeploy.models.llama import MLP
from projdeploy.models.projected import PNConfig, build_pn, load_pn, write_pn_files

SMALL = config_for("tiny", 19, max_position_embeddings=32)


def test_weights_follow_the_formula():
    m = build_pn(PNConfig(SMALL, num_experts=3, basis_size=5, code_size=2), seed=0)
    for layer in range(SMALL.num_hidden_layers):
        for i in range(3):
            w = m.mlp_weights(layer, m.coefficients(torch.tensor([i]))[layer])["up"][0]
            E, M, T = m.codes.detach(), m.pn[layer].mix.detach(), m.pn[layer].up.detach()
            ref = sum(E[i, q] * M[q, r] * T[r] for q in range(2) for r in range(5))
            assert torch.allclose(w, ref, atol=1e-6)


def test_hard_moe_equals_explicit_per_expert_mlps():
    k = 3
    cfg = PNConfig.hard_moe(SMALL, k)
    pn = build_pn(cfg, seed=1)
    assert not any(n.endswith("codes") or n.endswith("mix") for n, _ in pn.named_parameters())  # fixed one-hot/I
    experts = []  # explicit mixture: expert i owns MLP i = T[:, :, i]
    for i in range(k):
        mlps = []
        for layer in range(SMALL.num_hidden_layers):
            mlp = MLP(SMALL)
            for name in ("gate", "up", "down"):
                getattr(mlp, f"{name}_proj").weight.data.copy_(getattr(pn.pn[layer], name)[i])
            mlps.append(mlp)
        experts.append(mlps)
    ids = torch.randint(0, 19, (7, 16), generator=torch.Generator().manual_seed(0))
    route = torch.tensor([2, 0, 1, 1, 2, 0, 2])
    got = pn(ids, route)
    for b in range(7):
        ref = pn.lm_head(pn.model(ids[b : b + 1], mlps=experts[int(route[b])]))
        assert (got[b : b + 1] - ref).abs().max().item() <= 1e-6
    # and the gradient reaches only the routed experts' basis slices
    got.sum().backward()
    assert pn.pn[0].up.grad[0].abs().sum() > 0
    pn.zero_grad()
    pn(ids, torch.zeros(7, dtype=torch.long)).sum().backward()
    assert pn.pn[0].up.grad[1].abs().sum() == 0


def test_mixed_batch_equals_per_expert_rows_and_materialised_model():
    pn = build_pn(PNConfig(SMALL, 4, 6, 3), seed=2)
    ids = torch.randint(0, 19, (5, 12), generator=torch.Generator().manual_seed(1))
    route = torch.tensor([3, 1, 3, 0, 2])
    got = pn(ids, route)
    for b in range(5):
        alone = pn(ids[b : b + 1], int(route[b]))
        small = pn.materialize(int(route[b]))
        assert (got[b] - alone[0]).abs().max() < 1e-5
        assert (got[b] - small(ids[b : b + 1])[0]).abs().max() < 1e-5


def test_config_validation_and_roundtrip(tmp_path):
    with pytest.raises(ConfigError, match="h = m = k"):
        PNConfig(SMALL, 4, 3, 4, kind="hard-moe")
    with pytest.raises(ConfigError, match="kind"):
        PNConfig(SMALL, 4, 3, 4, kind="soft")
    pn = build_pn(PNConfig(SMALL, 2, 3, 2), seed=0)
    write_pn_files(tmp_path, pn)
    again = load_pn(tmp_path)
    ids = torch.randint(0, 19, (2, 8))
    assert torch.equal(pn.eval()(ids, 1), again(ids, 1))
    assert pn.config.num_parameters() == sum(p.numel() for p in pn.parameters())
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(CheckpointError, match="not a Projected Network"):
        load_pn(tmp_path)
