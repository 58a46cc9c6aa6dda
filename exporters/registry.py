"""Registry of export formats and their named recipes; unknown names fail with the known ones.

    projdeploy export --list-recipes

A format is a module (``exporters/<format>_export.py``) with ``FORMAT``,
``RECIPES``, ``is_available()``, ``check_available(recipe)``,
``export(model, example_inputs, recipe, out_dir, ...)``, ``runner_for_artifact(artifact)``
and ``load_runner(artifact_dir)``. Importing this module imports none of them.
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
    """The format module for ``name`` (executorch | coreml | onnx)."""
    if name not in FORMATS:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError("format", name, FORMATS)
    return importlib.import_module(FORMATS[name])


def recipes(format: str) -> dict:
    return dict(get_format(format).RECIPES)


def get_recipe(format: str, name):
    """A named recipe of ``format``; a Recipe instance of that format passes through."""
    from .base import Recipe

    if isinstance(name, Recipe):
        if name.format != format:
            from projdeploy.errors import ConfigError

            raise ConfigError(f"recipe {name.name!r}", "format", f"is {name.format!r}, expected {format!r}")
        return name
    table = recipes(format)
    if name not in table:
        from projdeploy.errors import UnknownNameError

        raise UnknownNameError(f"{format} recipe", name, table)
    return table[name]


def list_recipes() -> list:
    """Every recipe of every format, in registry order."""
    return [r for f in FORMATS for r in get_format(f).RECIPES.values()]


def available(format: str) -> bool:
    return bool(get_format(format).is_available())


def load_runner(artifact_dir: str | Path, **kwargs):
    """A runner for an artifact dir (``.run(program, [np arrays]) -> [np arrays]``), or None where its
    runtime cannot run on this machine (Core ML on Linux, ExecuTorch Core ML / QNN delegates)."""
    from .base import read_manifest

    m = read_manifest(artifact_dir)
    return get_format(m["format"]).load_runner(artifact_dir, **kwargs)


def tool_versions_line() -> str:
    from .base import tool_versions

    return ", ".join(f"{k} {v}" for k, v in tool_versions().items())
