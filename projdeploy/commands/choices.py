"""CLI choices read from the registries, so a command cannot offer a name the code does not know (or miss one).

    python -c "from projdeploy.commands.choices import methods; print(methods().choices)"

Methods, transfers, formats and recipes are closed sets (``click.Choice``);
targets and profiles are a shipped name or the path of the user's own YAML file
(:class:`NameOrFile`). Every registry here is cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable

import click

YAML = (".yaml", ".yml")


class NameOrFile(click.ParamType):
    """A name from ``names()`` or a path to a YAML file; an unknown name fails listing the known ones."""

    def __init__(self, kind: str, names: Callable[[], list[str]]):
        self.kind, self.names = kind, names
        self.name = kind

    def convert(self, value, param, ctx):
        value = str(value)
        if value.endswith(YAML) or "/" in value or value in self.names():
            return value
        self.fail(f"unknown {self.kind} {value!r}; known {self.kind}s: {', '.join(self.names())}, or a <file>.yaml")

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in self.names() if n.startswith(incomplete)]

    def get_metavar(self, param, ctx=None) -> str:
        return "[" + "|".join([*self.names(), "FILE.yaml"]) + "]"


def methods() -> click.Choice:
    from ..project.methods import METHODS

    return click.Choice(list(METHODS))


def transfers() -> click.Choice:
    from ..transfer import TRANSFERS

    return click.Choice(list(TRANSFERS))


def formats() -> click.Choice:
    from exporters.registry import FORMATS

    return click.Choice(list(FORMATS))


def recipes() -> click.Choice:
    """Every recipe name of every format, LM programs' included (which names a format accepts for a task is
    checked by the registry)."""
    from exporters.registry import list_lm_recipes, list_recipes

    return click.Choice(list(dict.fromkeys(r.name for r in [*list_recipes(), *list_lm_recipes()])))


def targets() -> NameOrFile:
    from ..targets import shipped_targets

    return NameOrFile("target", shipped_targets)


def profiles() -> NameOrFile:
    from ..check.profiles import profile_names

    return NameOrFile("profile", profile_names)


def sdk_targets() -> click.Choice:
    from ..sdk import TARGETS

    return click.Choice(list(TARGETS))


def stages() -> click.Choice:
    from ..build import STAGES

    return click.Choice(STAGES)


def pretrain_models() -> click.Choice:
    from ..train.pretrain import MODELS

    return click.Choice(list(MODELS))


def presets() -> click.Choice:
    from ..train.presets import PRESETS

    return click.Choice(list(PRESETS))
