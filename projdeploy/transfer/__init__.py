"""Feature transfer from frozen big models to a small one: AFT (methods.md section 3) and feature KD."""

from .aft import AFTPrior, aft_regularizer
from .kd import FeatureKD

TRANSFERS = ("none", "aft", "kd")

__all__ = ["AFTPrior", "aft_regularizer", "FeatureKD", "TRANSFERS"]
