"""The one table of projection methods: what each one pretrains, how it projects, which options it takes.

    python -c "from projdeploy.project.methods import METHODS; print({m.name: m.pretrains for m in METHODS.values()})"

``projdeploy project --method``, ``projdeploy build --method`` and the Python API
all read this table, so a method cannot be offered by one and be unknown to
another. ``pretrains`` is the ``pretrain --model`` kind whose checkpoint the
method projects from (``build`` pretrains exactly that); ``options`` are the
keyword options the method accepts (the CLI passes only those). Heavy modules
are imported inside the projection functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnknownNameError


@dataclass(frozen=True)
class ProjectionMethod:
    name: str
    pretrains: str  # the `pretrain --model` kind this method reads (build pretrains it)
    summary: str
    run: Callable  # (big_dir, task, *, seed, **options) -> (small model, info dict)
    options: tuple[str, ...] = ()


def _pn(big_dir, task, *, seed=0, rule="most-frequent", tune_coefficients_steps=0):
    from .pn import project_pn

    return project_pn(big_dir, task, rule, tune_coefficients_steps, seed)


def _projector(big_dir, task, *, seed=0, fit_steps=100):
    from .projector import project_projector

    return project_projector(big_dir, task, fit_steps=fit_steps, seed=seed)


def _truncate(big_dir, task, *, seed=0, size=None, params=None):
    from .api import dense_projection

    return dense_projection(big_dir, task, "truncate", seed=seed, size=size, params=params)


def _prune(big_dir, task, *, seed=0, size=None, params=None, calibration=32):
    from .api import dense_projection

    return dense_projection(big_dir, task, "prune", seed=seed, size=size, params=params, calibration=calibration)


METHODS: dict[str, ProjectionMethod] = {
    m.name: m
    for m in (
        ProjectionMethod(
            "pn", "pn", "Projected Network: materialise the task's expert", _pn, ("rule", "tune_coefficients_steps")
        ),
        ProjectionMethod(
            "hard-moe",
            "hard-moe",
            "hard mixture of experts (the PN ablation h = m = k): pick the task's expert",
            _pn,
            ("rule", "tune_coefficients_steps"),
        ),
        ProjectionMethod(
            "projector",
            "projector",
            "Projectable Models: the learned task-conditioned operator",
            _projector,
            ("fit_steps",),
        ),
        ProjectionMethod(
            "truncate",
            "dense",
            "naive slicing of a dense big model (the naive baseline)",
            _truncate,
            ("size", "params"),
        ),
        ProjectionMethod(
            "prune",
            "dense",
            "Minitron-style structured width + depth pruning from activations (the strong baseline)",
            _prune,
            ("size", "params", "calibration"),
        ),
    )
}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> ProjectionMethod:
    if name not in METHODS:
        raise UnknownNameError("projection method", name, METHODS)
    return METHODS[name]
