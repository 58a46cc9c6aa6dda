"""Adaptive Feature Transfer regulariser, exactly as methods.md section 3 (official ``prior.py``, method aft).

    projdeploy finetune --checkpoint runs/cls --task digits-cls --transfer aft --teacher runs/dense --out runs/cls-aft

Per mini-batch: teacher features are gated by ``sigmoid(s)`` (``s`` learned, starts at 0),
both feature sets are centred over the batch and row-normalised, and the
regulariser is the RMS difference of their B x B linear kernels. The small
network and ``s`` are updated together by one optimiser step per batch.
"""

from __future__ import annotations

import torch
from torch import nn


def aft_regularizer(phi: torch.Tensor, psi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``R = sqrt(mean((K_phi - K_psi)^2) + 1e-8)`` for Phi (B x d_phi), Psi (B x d_psi), gates s (d_psi)."""
    psi_s = psi * torch.sigmoid(s)
    phi_c = phi - phi.mean(0, keepdim=True)
    psi_c = psi_s - psi_s.mean(0, keepdim=True)
    phi_n = phi_c / (phi_c.norm(dim=1, keepdim=True) + 1e-8)
    psi_n = psi_c / (psi_c.norm(dim=1, keepdim=True) + 1e-8)
    k = phi_n @ phi_n.T
    k_t = psi_n @ psi_n.T
    return torch.sqrt(((k - k_t) ** 2).mean() + 1e-8)


class AFTPrior(nn.Module):
    """The learned per-dimension gates ``s`` (initialised to 0) and the weight ``beta``."""

    def __init__(self, d_psi: int, beta: float = 10.0):
        super().__init__()
        self.s = nn.Parameter(torch.zeros(d_psi))
        self.beta = beta

    def forward(self, phi: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return self.beta * aft_regularizer(phi, psi, self.s)

    def gates(self) -> torch.Tensor:
        return torch.sigmoid(self.s.detach())
