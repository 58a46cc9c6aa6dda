"""``projdeploy finetune --checkpoint DIR --task NAME --transfer none|aft|kd|distill ... [--teacher DIR|NAME ...] --out DIR``.

``--transfer`` repeats to combine (``--transfer aft --transfer distill``: AFT features plus response distillation).
"""

from __future__ import annotations

import click

from ..layout import overwrite_option
from . import choices


@click.command("finetune")
@click.option("--checkpoint", required=True, type=click.Path(), help="Small checkpoint to start from.")
@click.option("--task", "task_name", required=True, help="Built-in task name or task YAML file.")
@click.option(
    "--transfer",
    type=choices.transfers(),
    multiple=True,
    default=("none",),
    show_default=True,
    help="Repeat to combine (at most one of aft/kd, plus distill).",
)
@click.option(
    "--teacher",
    "teachers",
    multiple=True,
    type=click.Path(),
    help="Frozen big model(s) for aft/kd/distill (checkpoint, HF directory, .gguf, built-in name); "
    "aft/kd concatenate several teachers' features, distill reads the first.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint directory to write.")
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Peak learning rate [default: 3e-3 for projdeploy's small models, 1e-4 for transformers encoder "
    "classifiers such as a pruned MiniLM].",
)
@click.option("--beta", type=click.FloatRange(0), default=10.0, show_default=True, help="aft/kd weight.")
@click.option("--eval-every", type=click.IntRange(1), default=20, show_default=True)
@click.option("--patience", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--noise-dims",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Append this many noise dimensions to the teacher features (robustness probe).",
)
@click.option("--train-rows", type=click.IntRange(1), default=None, help="Use a seeded subset of training rows.")
@click.option("--seed", type=int, default=0, show_default=True)
@overwrite_option
def cli(
    checkpoint,
    task_name,
    transfer,
    teachers,
    out,
    steps,
    batch_size,
    lr,
    beta,
    eval_every,
    patience,
    noise_dims,
    train_rows,
    seed,
):
    """Fine-tune a small model on a task (none | aft | kd transfer)."""
    from ..train.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        beta=beta,
        eval_every=eval_every,
        patience=patience,
        noise_dims=noise_dims,
        seed=seed,
    )
    transfer = "+".join(transfer)
    _, info = finetune(checkpoint, task_name, transfer, teachers, out, cfg, train_rows=train_rows, data_seed=seed)
    click.echo(
        f"fine-tuned {info['task']} ({transfer}, {info['train_rows']} rows) in {info['seconds']:.1f}s; "
        f"best step {info['best_step']}: val {info['metric']} {info['val']:.4f}, "
        f"test {info['test']:.4f}"
    )
    click.echo(f"checkpoint: {out}")
