"""``projdeploy tasks list`` / ``projdeploy tasks show NAME``."""

from __future__ import annotations

import json

import click


@click.group("tasks")
def cli():
    """List and inspect built-in and user tasks."""


@cli.command("list")
def list_tasks():
    """Print every built-in task name (families and their variants)."""
    from ..tasks.registry import FAMILIES, builtin_task_names

    for fam in FAMILIES.values():
        click.echo(f"{fam.name:12s} {fam.description}")
    click.echo("")
    for name in builtin_task_names():
        click.echo(name)
    click.echo("\nUser tasks: pass the path of a task YAML file (schema in README.md).")


@cli.command("show")
@click.argument("name")
def show(name):
    """Show a task's splits, tokenizer, metric and default budget as JSON."""
    from ..tasks import get_task

    click.echo(json.dumps(get_task(name).summary(), indent=2))
