"""``projdeploy project --big DIR|GGUF|NAME --task NAME --method pn|hard-moe|projector|truncate|prune --out DIR``.

The method choices and the options each method takes come from ``projdeploy/project/methods.py``.
"""

from __future__ import annotations

import click

from ..layout import overwrite_option
from ..project.methods import METHODS
from . import choices


@click.command("project")
@click.option(
    "--big",
    "big_dir",
    required=True,
    type=click.Path(),
    help="Big model: projdeploy checkpoint, HF directory, .gguf file or built-in name (projdeploy models list).",
)
@click.option("--task", "task_name", required=True, help="Built-in task name or task YAML file.")
@click.option("--method", required=True, type=choices.methods(), help="Projection method.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Small checkpoint to write.")
@click.option(
    "--rule",
    type=click.Choice(["most-frequent", "lowest-loss"]),
    default="most-frequent",
    show_default=True,
    help="pn: expert selection rule.",
)
@click.option(
    "--tune-coefficients-steps",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="pn: tune only the per-layer basis coefficients this many steps before materialising.",
)
@click.option(
    "--fit-steps",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="projector: steps fitting a new task's embedding (tasks seen in training are one-shot).",
)
@click.option(
    "--size",
    default=None,
    help="truncate/prune (and projector/pn from a pretrained --big): preset (tiny|small|base) or hidden=H,layers=L,ffn=F,heads=N,kv=M "
    "(default: the big checkpoint's preset; 25%% of a pretrained model's non-embedding parameters).",
)
@click.option("--params", default=None, help="truncate/prune: parameter budget, 25%% (non-embedding) or 30M (total).")
@click.option(
    "--calibration-rows", type=click.IntRange(1), default=32, show_default=True, help="prune: calibration rows."
)
@click.option(
    "--train-steps",
    type=click.IntRange(0),
    default=None,
    help="projector/pn from a pretrained --big: steps of training on generic data (the task's domain held out) "
    "before projecting; 0 gives the pruned model exactly [default: 20].",
)
@click.option("--seed", type=int, default=0, show_default=True)
@overwrite_option
def cli(
    big_dir,
    task_name,
    method,
    out,
    rule,
    tune_coefficients_steps,
    fit_steps,
    size,
    params,
    calibration_rows,
    train_steps,
    seed,
):
    """Project a big model into a small task model in one shot."""
    from ..foundation import is_foundation_source
    from ..project.api import project

    given = {
        "rule": rule,
        "tune_coefficients_steps": tune_coefficients_steps,
        "fit_steps": fit_steps,
        "size": size,
        "params": params,
        "calibration": calibration_rows,
        "train_steps": train_steps,
    }
    allowed = METHODS[method].options_for(is_foundation_source(big_dir))
    opts = {k: v for k, v in given.items() if k in allowed}
    info = project(big_dir, task_name, method, out, seed=seed, **opts)
    extra = {k: v for k, v in info.items() if k not in ("method", "big", "seconds", "out")}
    click.echo(f"projected {task_name} with {method} in {info['seconds']:.2f}s {extra}")
    click.echo(f"checkpoint: {out}")
