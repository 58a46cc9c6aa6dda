"""``projdeploy train --task NAME --size tiny|small --out DIR [--steps N] [--resume]``."""

from __future__ import annotations

import click

from ..layout import overwrite_option
from ..models.config import SIZES


@click.command("train")
@click.option("--task", "task_name", required=True, help="Built-in task name or task YAML file.")
@click.option("--size", type=click.Choice(sorted(SIZES)), default="tiny", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint directory to write.")
@click.option("--steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=3e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--eval-every", type=click.IntRange(0), default=100, show_default=True)
@click.option(
    "--ckpt-every",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Write a resumable checkpoint every N steps (0: only at the end).",
)
@click.option("--resume", is_flag=True, help="Continue exactly from the checkpoint in --out.")
@overwrite_option
def cli(task_name, size, out, steps, batch_size, lr, seed, eval_every, ckpt_every, resume):
    """Train a small model on a task and write an HF-compatible checkpoint."""
    from ..train.loop import TrainConfig
    from ..train.small import train_small

    cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        eval_every=eval_every,
        ckpt_every=ckpt_every,
        warmup_steps=min(20, steps // 10),
    )
    _, task, res = train_small(task_name, size, out, cfg, resume=resume)
    last = res.evals[-1] if res.evals else {}
    click.echo(
        f"trained {task.name} ({size}) for {steps} steps in {res.seconds:.1f}s, "
        f"{res.tokens / max(res.seconds, 1e-9):.0f} tokens/s; final train loss {res.losses[-1]:.4f}"
        + (f"; eval {last['metric']} {last['value']:.4f}" if last else "")
    )
    click.echo(f"checkpoint: {out}")
