"""``projdeploy build --task NAME --target ios|android|web|linux [--big DIR] [--profile ...] [--out dist/]``."""

from __future__ import annotations

import click

from ..layout import overwrite_option
from . import choices


@click.command("build")
@click.option("--task", "task_name", required=True, help="Built-in task name or task YAML file.")
@click.option("--target", type=choices.targets(), default="ios", show_default=True, help="Build target.")
@click.option("--big", type=click.Path(), default=None, help="Use this big model instead of pretraining one.")
@click.option(
    "--profile", "profiles", type=choices.profiles(), multiple=True, help="Device profile(s); default: the target's."
)
@click.option("--out", default="dist", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--cache-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Stage cache (default: $PROJDEPLOY_CACHE or ~/.cache/projdeploy).",
)
@click.option("--preset", type=choices.presets(), default="tiny", show_default=True, help="Pretraining preset.")
@click.option(
    "--pretrain-steps",
    type=click.IntRange(1),
    default=None,
    help="Pretraining steps (default: the preset's FLOP budget).",
)
@click.option("--method", type=choices.methods(), default="pn", show_default=True, help="Projection method.")
@click.option("--transfer", type=choices.transfers(), default="none", show_default=True)
@click.option("--finetune-steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--budget", type=click.Path(dir_okay=False), default=None, help="Budget YAML overriding the task's.")
@click.option("--force", type=choices.stages(), default=None, help="Re-run from this stage on.")
@click.option("--dry-run", is_flag=True, help="Print the plan and what is cached; run nothing.")
@overwrite_option(out_is_parent=True)
def cli(
    task_name,
    target,
    big,
    profiles,
    out,
    cache_dir,
    preset,
    pretrain_steps,
    method,
    transfer,
    finetune_steps,
    seed,
    budget,
    force,
    dry_run,
):
    """Run pretrain -> project -> finetune -> export -> check -> sdk into dist/<task>-<target>/."""
    from ..build import BuildOptions, build
    from ..summary import summary_table

    opts = BuildOptions(
        task=task_name,
        target=target,
        big=big,
        profiles=tuple(profiles),
        out=out,
        cache_dir=cache_dir,
        preset=preset,
        pretrain_steps=pretrain_steps,
        method=method,
        transfer=transfer,
        finetune_steps=finetune_steps,
        seed=seed,
        budget=budget,
        force=force,
        dry_run=dry_run,
    )
    res = build(opts)
    if dry_run:
        return
    click.echo("")
    click.echo(summary_table(res.report.to_dict()))
    click.echo(f"\n{res.out_dir}: {'all budgets pass' if res.passed else 'BUDGET FAILURES (see report.html)'}")
    if not res.passed:
        raise SystemExit(1)
