"""Registry of export formats and their named recipes; unknown names fail with the known ones.

    projdeploy export --list-recipes

``FORMATS`` maps each format name to its module (``exporters/<name>_export.py``),
which defines ``FORMAT``, its :class:`exporters.format.Format` instance. A test
keeps this table and the modules in step in both directions. Importing this
module imports none of the format modules (nor any toolchain).
"""

from __future__ import annotations

import importlib
from pathlib import Path

FORMATS = {
    "executorch": "exporters.executorch_export",
    "coreml": "exporters.coreml_export",
    "onnx": "exporters.onnx_export",
}


def get_format(name: str):
    """The :class:`~exporters.format.Format` named ``name`` (executorch | coreml | onnx)."""
    if name not in FORMATS:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError("format", name, FORMATS)
    return importlib.import_module(FORMATS[name]).FORMAT


def formats() -> list:
    """Every Format, in registry order."""
    return [get_format(f) for f in FORMATS]


def recipes(format: str) -> dict:
    return dict(get_format(format).recipes)


def get_recipe(format: str, name):
    """A named recipe of ``format``; a Recipe instance of that format passes through."""
    return get_format(format).recipe(name)


def list_recipes() -> list:
    """Every single-program recipe of every format, in registry order."""
    return [r for f in formats() for r in f.recipes.values()]


def list_lm_recipes() -> list:
    """Every LM program recipe (exporters/llm/recipes.py) of every format, in registry order."""
    return [r for f in formats() for r in f.lm_recipes.values()]


def available(format: str) -> bool:
    return get_format(format).available()


def format_of(artifact):
    """The Format of an :class:`~exporters.base.Artifact` (or of an artifact directory's manifest)."""
    from .base import Artifact

    art = artifact if isinstance(artifact, Artifact) else Artifact.read(artifact)
    return get_format(art.format)


def load_runner(artifact_dir: str | Path, threads: int = 1):
    """A host runner for an artifact dir (``.run(program, [np arrays]) -> [np arrays]``) on ``threads``
    CPU threads. Raises UnavailableError where its runtime cannot run on this machine (Core ML on Linux,
    ExecuTorch Core ML / QNN delegates); ``get_format(f).host_gap(recipe)`` says so beforehand."""
    from .base import Artifact

    art = Artifact.read(artifact_dir)
    return get_format(art.format).runner(art, threads)


def tool_versions_line() -> str:
    from .base import tool_versions

    return ", ".join(f"{k} {v}" for k, v in tool_versions().items())
