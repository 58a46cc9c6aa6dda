"""``projdeploy eval --checkpoint DIR --task NAME [--out metrics.json]``."""

from __future__ import annotations

import click


@click.command("eval")
@click.option("--checkpoint", required=True, type=click.Path(), help="Small checkpoint directory.")
@click.option("--task", "task_name", required=True, help="Built-in task name or task YAML file.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the JSON (default: <checkpoint>/eval-<task>.json).",
)
def cli(checkpoint, task_name, out):
    """Print the task metric of a checkpoint and its count-based baseline; write both as JSON."""
    from ..evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(checkpoint, task_name, out)
    click.echo(
        f"{res['task']}: {res['metric']} = {res['value']:.4f} "
        f"(baseline {res['baseline']['name']}: {res['baseline']['value']:.4f}; "
        f"{'beats' if res['beats_baseline'] else 'does NOT beat'} it)"
    )
    if "perplexity" in res:
        click.echo(f"perplexity = {res['perplexity']:.3f}")
    click.echo(f"written: {res['path']}")
