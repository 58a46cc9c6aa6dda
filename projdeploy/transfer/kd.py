"""Feature knowledge distillation: the AFT paper's KD baseline.

    projdeploy finetune --checkpoint runs/cls --task digits-cls --transfer kd --teacher runs/dense --out runs/cls-kd

A learned linear map from the small model's features to the teacher's; the
small model must reconstruct *all* of psi: ``beta * mean((W phi + b - psi)^2)``.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureKD(nn.Module):
    def __init__(self, d_phi: int, d_psi: int, beta: float = 10.0):
        super().__init__()
        self.map = nn.Linear(d_phi, d_psi)
        nn.init.zeros_(self.map.bias)
        self.beta = beta

    def forward(self, phi: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return self.beta * ((self.map(phi) - psi) ** 2).mean()
