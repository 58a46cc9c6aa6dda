"""Feature-KD baseline: beta * MSE(W phi + b, psi)."""

import pytest
import torch

from projdeploy.transfer import FeatureKD


def test_kd_loss_matches_hand_value():
    kd = FeatureKD(2, 2, beta=2.0)
    with torch.no_grad():
        kd.map.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        kd.map.bias.zero_()
    phi = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    psi = torch.tensor([[1.0, 0.0], [1.0, -2.0]])
    # W phi = [[1, 2], [0, -2]]; squared errors 0, 4, 1, 0 -> mean 1.25; beta 2 -> 2.5
    assert kd(phi, psi).item() == pytest.approx(2.5)


def test_kd_reaches_zero_when_psi_is_linear_in_phi():
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(16, 3, generator=g)
    psi = phi @ torch.randn(3, 4, generator=g)
    kd = FeatureKD(3, 4)
    opt = torch.optim.Adam(kd.parameters(), lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss = kd(phi, psi)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
