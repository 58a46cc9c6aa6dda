"""Feature transfer from frozen big models to a small one: AFT (methods.md section 3) and feature KD.

    python -c "from projdeploy.transfer import TRANSFERS; print(list(TRANSFERS))"

``TRANSFERS`` is the one table of ``--transfer`` choices (``finetune`` and
``build`` read it). Importing this package is cheap: the regularisers (torch)
are imported when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnknownNameError


@dataclass(frozen=True)
class Transfer:
    name: str
    summary: str
    needs_teacher: bool  # reads frozen big-model features (build passes the big model)
    regularizer: Callable | None = None  # (feature_dim, hidden_size, beta) -> nn.Module with .parameters()


def _aft(feature_dim: int, hidden_size: int, beta: float):
    from .aft import AFTPrior

    return AFTPrior(feature_dim, beta)


def _kd(feature_dim: int, hidden_size: int, beta: float):
    from .kd import FeatureKD

    return FeatureKD(hidden_size, feature_dim, beta)


TRANSFERS: dict[str, Transfer] = {
    t.name: t
    for t in (
        Transfer("none", "plain fine-tuning", False),
        Transfer("aft", "Adaptive Feature Transfer from the big model's features", True, _aft),
        Transfer("kd", "feature knowledge distillation (linear map to the big model's features)", True, _kd),
        Transfer("distill", "response distillation: temperature-scaled KL on cached top-k teacher logits", True),
    )
}


def get_transfer(name: str) -> Transfer:
    if name not in TRANSFERS:
        raise UnknownNameError("transfer", name, TRANSFERS)
    return TRANSFERS[name]


def parse_transfers(spec: str | tuple | list) -> tuple[Transfer, ...]:
    """``"aft+distill"`` (or a list of names) -> the transfers, at most one feature regulariser; ``none`` alone."""
    from ..errors import ConfigError

    names = [n for n in (spec.split("+") if isinstance(spec, str) else list(spec)) if n]
    parts = tuple(get_transfer(n) for n in dict.fromkeys(names)) or (TRANSFERS["none"],)
    if len(parts) > 1 and any(t.name == "none" for t in parts):
        raise ConfigError("finetune", "transfer", "'none' cannot be combined with other transfers")
    if sum(t.regularizer is not None for t in parts) > 1:
        raise ConfigError("finetune", "transfer", "combine at most one feature transfer (aft or kd) with distill")
    return parts


_LAZY = {"AFTPrior": ".aft", "aft_regularizer": ".aft", "FeatureKD": ".kd"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TRANSFERS", "Transfer", "get_transfer", "parse_transfers", "AFTPrior", "FeatureKD", "aft_regularizer"]
