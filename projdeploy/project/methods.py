"""The one table of projection methods: what each one pretrains, how it projects, which options it takes.

    python -c "from projdeploy.project.methods import METHODS; print({m.name: m.pretrains for m in METHODS.values()})"

``projdeploy project --method``, ``projdeploy build --method`` and the Python API
all read this table, so a method cannot be offered by one and be unknown to
another. ``pretrains`` is the ``pretrain --model`` kind whose checkpoint the
method projects from (``build`` pretrains exactly that); ``options`` are the
keyword options the method accepts (the CLI passes only those). ``pretrained``
is the method's run for a pretrained model given as ``--big`` (HF directory,
GGUF, built-in name; ``projdeploy.foundation``) with its own options; a method
without one refuses pretrained models. Heavy modules are imported inside the
projection functions.
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
    pretrained: Callable | None = None  # the same, for a pretrained --big (None: not supported)
    pretrained_options: tuple[str, ...] = ()

    def options_for(self, pretrained: bool) -> tuple[str, ...]:
        return self.pretrained_options if pretrained else self.options

    def runner(self, big, pretrained: bool) -> Callable:
        if not pretrained:
            return self.run
        if self.pretrained is None:
            from ..errors import CheckpointError

            known = [m.name for m in METHODS.values() if m.pretrained is not None]
            raise CheckpointError(
                f"{big}: a pretrained model cannot be projected with {self.name!r}; use one of {known}"
            )
        return self.pretrained


def _pn(big_dir, task, *, seed=0, rule="most-frequent", tune_coefficients_steps=0):
    from .pn import project_pn

    return project_pn(big_dir, task, rule, tune_coefficients_steps, seed)


def _projector(big_dir, task, *, seed=0, fit_steps=100):
    from .projector import project_projector

    return project_projector(big_dir, task, fit_steps=fit_steps, seed=seed)


def _continued(train_steps):
    from .pretrained import ContinuedTraining

    return ContinuedTraining() if train_steps is None else ContinuedTraining(steps=train_steps)


def _projector_pretrained(
    big, task, *, seed=0, size=None, params=None, calibration=32, fit_steps=100, train_steps=None
):
    from .pretrained import project_projector_pretrained

    kw = dict(size=size, params=params, calibration=calibration, fit_steps=fit_steps, train=_continued(train_steps))
    return project_projector_pretrained(big, task, seed=seed, **kw)


def _pn_pretrained(
    big, task, *, seed=0, size=None, params=None, calibration=32, rule="most-frequent", train_steps=None
):
    from .upcycle import project_pn_pretrained

    kw = dict(size=size, params=params, calibration=calibration, rule=rule, train=_continued(train_steps))
    return project_pn_pretrained(big, task, seed=seed, **kw)


SIZING = ("size", "params", "calibration")


def _truncate_pretrained(big, task, *, seed=0, size=None, params=None):
    from .api import pretrained_projection

    return pretrained_projection(big, task, "truncate", seed=seed, size=size, params=params)


def _prune_pretrained(big, task, *, seed=0, size=None, params=None, calibration=32):
    from .api import pretrained_projection

    return pretrained_projection(big, task, "prune", seed=seed, size=size, params=params, calibration=calibration)


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
            "pn",
            "pn",
            "Projected Network: materialise the task's expert (pretrained --big: upcycled from the pruned model)",
            _pn,
            ("rule", "tune_coefficients_steps"),
            _pn_pretrained,
            (*SIZING, "rule", "train_steps"),
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
            "Projectable Models: the learned task-conditioned operator (pretrained --big: prune-initialised)",
            _projector,
            ("fit_steps",),
            _projector_pretrained,
            (*SIZING, "fit_steps", "train_steps"),
        ),
        ProjectionMethod(
            "truncate",
            "dense",
            "naive slicing of a dense big model (the naive baseline)",
            _truncate,
            ("size", "params"),
            _truncate_pretrained,
            ("size", "params"),
        ),
        ProjectionMethod(
            "prune",
            "dense",
            "Minitron-style structured width + depth pruning from activations (the strong baseline)",
            _prune,
            SIZING,
            _prune_pretrained,
            SIZING,
        ),
    )
}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> ProjectionMethod:
    if name not in METHODS:
        raise UnknownNameError("projection method", name, METHODS)
    return METHODS[name]
