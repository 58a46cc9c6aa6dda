"""Feature transfer from frozen big models to a small one: AFT (methods.md section 3) and feature KD."""

from .aft import AFTPrior, aft_regularizer
from .kd import FeatureKD

TRANSFERS = ("none", "aft", "kd")

__all__ = ["TRANSFERS", "AFTPrior", "FeatureKD", "aft_regularizer"]
