"""The contract every export format follows: one :class:`Format` instance per format owns its knowledge.

    python -c "from exporters.registry import get_format; f = get_format('onnx'); print(f.name, list(f.recipes))"

A format module (``exporters/<name>_export.py``, listed in exporters/registry.py)
defines ``FORMAT``, an instance of a :class:`Format` subclass. Everything that
depends on the format lives there: its recipes, whether its toolchain is
installed, the export itself, whether and how its runtime runs on this host,
the device runtime and numeric precision a recipe implies (for ``check``), the
PyTorch simulation of a runtime that cannot run here, and any extra
validation. Nothing outside ``exporters/`` tests format names.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from .base import Artifact, ExportError, Recipe, Runner, UnavailableError


def installed(module: str) -> bool:
    """Whether ``module`` (dotted names too) can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a missing parent package
        return False


class Format(ABC):
    """One export format, declared as ``class XFormat(Format, name=..., recipe_type=..., toolchain=(...),
    dynamic=...)``; LM tasks use its LM programs (``lm_recipe_type``, ``write_lm``, ``open_lm_runner``)."""

    name: ClassVar[str]
    recipe_type: ClassVar[type]
    toolchain: ClassVar[tuple[str, ...]]  # the packages export needs (also its host runtime)
    dynamic: ClassVar[bool]  # programs have a dynamic batch (and LM sequence) dimension
    boundary_dtypes: ClassVar[frozenset[str]] = frozenset()  # I/O dtypes the SDKs convert from/to float32
    split_ext: ClassVar[str | None] = None  # programs may be one file each, named <program><split_ext>
    split_always: ClassVar[bool] = False  # every program is its own file (never one file for all)
    parsable_graph: ClassVar[bool] = False  # the artifact's file is an operator graph check can cost directly

    def __init_subclass__(cls, **facts):
        super().__init_subclass__()
        for key, value in facts.items():
            if key not in Format.__annotations__:
                raise TypeError(f"{cls.__name__}: unknown format fact {key!r}")
            setattr(cls, key, value)

    lm_recipe_type: ClassVar[type | None] = None  # its LM program recipes (exporters/llm/recipes.py), if any

    def __init__(self, recipes: list[Recipe], lm_recipes: list[Recipe] = ()):
        self.recipes = {r.name: r for r in recipes}
        self.lm_recipes = {r.name: r for r in lm_recipes}
        for r, typ in [(r, self.recipe_type) for r in recipes] + [(r, self.lm_recipe_type) for r in lm_recipes]:
            if r.format != self.name or typ is None or not isinstance(r, typ):
                raise TypeError(f"recipe {r.name!r} ({type(r).__name__}, {r.format}) is not a {self.name} recipe")

    def __repr__(self) -> str:
        return f"<Format {self.name}: {', '.join(self.recipes)}>"

    def program_files(self, programs, main: str, artifact: Path) -> dict[str, str]:
        """Which file of an artifact holds each program: ``main`` for all, or ``<program><split_ext>`` each."""
        if self.split_ext:
            split = {p: f"{p}{self.split_ext}" for p in programs}
            if main not in split.values():  # one file holds every program (an LM program's package)
                return {p: main for p in programs}
            if self.split_always or (len(split) > 1 and all((artifact / f).exists() for f in split.values())):
                return split
        return {p: main for p in programs}

    # --- recipes and availability --------------------------------------------------------------
    def recipe(self, name: str | Recipe, lm: bool = False) -> Recipe:
        """A named recipe of this format (``lm``: of its LM programs); a recipe object of this format passes
        through. Unknown names fail listing the known ones."""
        table, typ, what = (
            (self.lm_recipes, self.lm_recipe_type, "LM recipe") if lm else (self.recipes, self.recipe_type, "recipe")
        )
        if isinstance(name, Recipe):
            if name.format != self.name or not isinstance(name, (self.recipe_type, self.lm_recipe_type or ())):
                from projdeploy.errors import ConfigError

                raise ConfigError(f"recipe {name.name!r}", "format", f"is {name.format!r}, expected {self.name!r}")
            return name
        if name not in table:
            from projdeploy.errors import UnknownNameError

            known = table or [f"(none: {self.name} has no LM program)"]
            raise UnknownNameError(f"{self.name} {what}", name, known)
        return table[name]

    def missing(self, recipe: Recipe | None = None) -> str | None:
        """Why ``recipe`` (or, without one, the format) cannot be exported here; None when it can."""
        absent = [m for m in self.toolchain if not installed(m)]
        if absent:
            return f"{self.name} export needs {', '.join(absent)}, not installed on this machine"
        return self.recipe_missing(recipe) if recipe is not None else None

    def recipe_missing(self, recipe: Recipe) -> str | None:
        """Why this recipe in particular cannot be exported here (a delegate's SDK, an optional exporter)."""
        return None

    def available(self) -> bool:
        return self.missing() is None

    def check_available(self, recipe: Recipe | None = None) -> None:
        reason = self.missing(recipe)
        if reason:
            raise UnavailableError(reason)

    # --- export -------------------------------------------------------------------------------
    def export(self, programs: list, recipe: Recipe, out: Path, calibration: list | None) -> Artifact:
        """Write the format's files for ``programs`` into ``out``; the Artifact has no manifest yet.
        ``calibration``: batches of train-split ``input_ids`` for calibrating quantizers."""
        self.check_available(recipe)
        try:
            return self.write(programs, recipe, Path(out), calibration)
        except ExportError:
            raise
        except Exception as e:  # the toolchain's own failure, with its message
            raise ExportError(f"{self.name} export ({recipe.name}) failed: {type(e).__name__}: {e}") from e

    @abstractmethod
    def write(self, programs: list, recipe: Recipe, out: Path, calibration: list | None) -> Artifact:
        """The format's own part of :meth:`export` (toolchain errors are wrapped there)."""

    def extra_validation(self, artifact: Artifact, call, task) -> dict:
        """Format-specific checks after parity (figures merged into the manifest's validation)."""
        return {}

    # --- LM programs (exporters/llm): forward(tokens, input_pos), the KV cache kept between calls ----
    def export_lm(self, checkpoint: Path, spec, recipe: Recipe, out: Path):
        """Write the format's LM program of ``checkpoint`` (an ``LMSpec``: architecture and window) into
        ``out``; returns an ``exporters.llm.artifact.LMWritten`` (validation and manifest come after)."""
        self.check_available(recipe)
        try:
            return self.write_lm(Path(checkpoint), spec, recipe, Path(out))
        except ExportError:
            raise
        except Exception as e:  # the toolchain's own failure, with its message
            raise ExportError(f"{self.name} LM export ({recipe.name}) failed: {type(e).__name__}: {e}") from e

    def write_lm(self, checkpoint: Path, spec, recipe: Recipe, out: Path):
        raise ExportError(f"{self.name} has no LM program; formats with one: see `projdeploy export --list-recipes`")

    def open_lm_runner(self, artifact: Artifact, threads: int):
        """An LM runner: ``prefill(prompt)``, ``forward(tokens)``, ``reset()``, ``pos``, ``max_seq_len`` and
        ``run("forward", [tokens, input_pos])``."""
        raise ExportError(f"{self.name} has no LM program runner")

    # --- running ------------------------------------------------------------------------------
    @abstractmethod
    def host_gap(self, recipe: Recipe) -> str | None:
        """Why an artifact of ``recipe`` cannot run on this machine; None when its runtime runs here.
        The one place that rule is written for the format."""

    def runner(self, artifact: Artifact, threads: int = 1) -> Runner:
        """A host runner (``.run(program, [np arrays]) -> [np arrays]``) on ``threads`` CPU threads;
        raises UnavailableError (with :meth:`host_gap`'s reason) where the runtime cannot run here."""
        reason = self.host_gap(artifact.recipe)
        if reason:
            raise UnavailableError(f"{artifact.path}: {reason}")
        from .llm.recipes import is_lm_recipe

        if is_lm_recipe(artifact.recipe):
            return self.open_lm_runner(artifact, threads)
        return self.open_runner(artifact, threads)

    @abstractmethod
    def open_runner(self, artifact: Artifact, threads: int) -> Runner: ...

    def localizer(self, artifact: Artifact, model):
        """``localize(inputs) -> Divergence | None`` comparing ``model``'s module outputs with the artifact's
        intermediate values in its runtime (exporters/localize.py); None where the runtime exposes none."""
        return None

    def simulate(self, model, recipe: Recipe):
        """A PyTorch module computing what ``recipe``'s runtime computes (for runtimes that cannot run here)."""
        raise ExportError(f"{self.name}/{recipe.name} runs on this machine; there is nothing to simulate")

    # --- what the device estimator needs --------------------------------------------------------
    @abstractmethod
    def runtime(self, recipe: Recipe) -> tuple[str, str]:
        """(device-profile runtime name, reason) an artifact of ``recipe`` runs on."""

    @abstractmethod
    def precision(self, recipe: Recipe):
        """(projdeploy.check.ops.Precision, reason): how ``recipe`` stores weights and computes."""
