"""AFT regulariser (methods.md section 3) against a hand computation on fixed tensors."""

import numpy as np
import pytest
import torch

from projdeploy.transfer import AFTPrior, aft_regularizer
from projdeploy.transfer.features import append_noise


def _hand(phi, psi, s):
    psi = psi * (1 / (1 + np.exp(-s)))

    def norm(x):
        x = x - x.mean(0, keepdims=True)
        return x / (np.sqrt((x**2).sum(1, keepdims=True)) + 1e-8)

    a, b = norm(phi), norm(psi)
    return np.sqrt(((a @ a.T - b @ b.T) ** 2).mean() + 1e-8)


def test_matches_hand_computation_on_fixed_tensors():
    phi = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [2.0, 2.0, 0.0], [1.0, -1.0, 0.5]])
    psi = np.array([[0.5, 1.0], [1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    s = np.array([0.3, -1.2])
    got = aft_regularizer(torch.tensor(phi), torch.tensor(psi), torch.tensor(s)).item()
    assert got == pytest.approx(_hand(phi, psi, s), rel=1e-12)
    # golden number, computed once by hand-written numpy above
    assert got == pytest.approx(0.69071603, abs=1e-7)


def test_identical_features_give_zero_and_gates_start_at_half():
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    prior = AFTPrior(5, beta=10.0)
    assert torch.allclose(prior.gates(), torch.full((5,), 0.5))
    assert prior(x, x).item() == pytest.approx(1e-3, abs=1e-6)  # sqrt(1e-8) * beta: scaling-invariant kernels


def test_gates_and_student_get_gradients():
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(6, 4, generator=g, requires_grad=True)
    psi = torch.randn(6, 3, generator=g)
    prior = AFTPrior(3)
    prior(phi, psi).backward()
    assert prior.s.grad is not None and prior.s.grad.abs().sum() > 0
    assert phi.grad.abs().sum() > 0


def test_noise_dimensions_are_appended_deterministically():
    psi = np.ones((4, 2), np.float32)
    a, b = append_noise(psi, 3, seed=5), append_noise(psi, 3, seed=5)
    assert a.shape == (4, 5) and np.array_equal(a, b) and np.array_equal(a[:, :2], psi)
    assert append_noise(psi, 0) is psi
