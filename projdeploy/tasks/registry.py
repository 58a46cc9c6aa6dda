"""Task registry: built-in task families, their named variants, and user task files.

``get_task("digits:0-4")``, ``get_task("pycode:email")``, ``get_task("my.yaml")``.
An unknown name fails with the list of known ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UnknownNameError


@dataclass(frozen=True)
class TaskFamily:
    name: str
    description: str
    build: Callable  # (variant: str | None) -> Task
    variants: Callable[[], tuple[str, ...]] = lambda: ()
    variant_required: bool = False


def _digits(variant):
    from .digits import digits_lm

    return digits_lm(variant)


def _digits_cls(variant):
    from .digits import digits_cls

    if variant:
        raise UnknownNameError("digits-cls variant", variant, ["(none)"])
    return digits_cls()


def _pycode(variant):
    from .pycode import pycode

    return pycode(variant)


def _pycode_cls(variant):
    from .pycode_cls import pycode_cls

    if variant:
        raise UnknownNameError("pycode-cls variant", variant, ["(none)"])
    return pycode_cls()


def _pycode_domains():
    from .pycode import domains

    return domains()


FAMILIES: dict[str, TaskFamily] = {
    f.name: f
    for f in [
        TaskFamily(
            "digits",
            "8x8 digit images as 64-pixel sequences; metric bits/dim. Variants: class subsets",
            _digits,
            lambda: ("0-4", "5-9", "7"),
        ),
        TaskFamily("digits-cls", "8x8 digit images, 10-way classification; metric accuracy", _digits_cls),
        TaskFamily(
            "pycode",
            "Python standard-library source, byte-level LM; metric bits/byte. Variants: packages",
            _pycode,
            _pycode_domains,
        ),
        TaskFamily(
            "pycode-cls",
            "which standard-library package a source snippet is from (split by file); metric accuracy",
            _pycode_cls,
        ),
    ]
}


def builtin_task_names() -> list[str]:
    names = []
    for fam in FAMILIES.values():
        if not fam.variant_required:
            names.append(fam.name)
        names += [f"{fam.name}:{v}" for v in fam.variants()]
    return names


def is_task_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


@functools.lru_cache(maxsize=32)
def get_task(name: str):
    """Build a task by name (cached per process). User task files end in .yaml/.yml."""
    if is_task_file(name):
        from .userfile import load_task_file

        return load_task_file(name)
    family, _, variant = name.partition(":")
    if family not in FAMILIES:
        raise UnknownNameError("task", name, list(FAMILIES) + ["<file>.yaml"])
    return FAMILIES[family].build(variant or None)
