"""``projdeploy pretrain --model pn|hard-moe|dense|slm|projector --preset tiny --data digits --out DIR [--resume]``."""

from __future__ import annotations

import json

import click

from ..layout import overwrite_option
from . import choices


@click.command("pretrain")
@click.option(
    "--model",
    "model",
    type=choices.pretrain_models(),
    default="pn",
    show_default=True,
    help="pn: Projected Network; hard-moe: hard mixture; dense: wide big source model; slm: dense small.",
)
@click.option("--preset", type=choices.presets(), default="tiny", show_default=True, help="Pretraining preset.")
@click.option("--data", required=True, help="Generic corpus: built-in pycode | digits, or a task YAML file.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint directory.")
@click.option("--resume", is_flag=True, help="Continue exactly from the checkpoint in --out.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Override the FLOP-budget step count.")
@click.option("--flops", type=float, default=None, help="Override the preset's FLOP budget.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(0), default=None, help="Checkpoint period in steps.")
@click.option("--eval-every", type=click.IntRange(0), default=None)
@click.option(
    "--embedding",
    default="auto",
    show_default=True,
    help="Clustering embedding: auto | pixels | tfidf-svd | sentence:<local model dir>.",
)
@click.option(
    "--strategy",
    type=click.Choice(["ddp", "fsdp"]),
    default="ddp",
    show_default=True,
    help="Data parallelism under torchrun.",
)
@click.option(
    "--init",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Start from these weights (+ optimizer state), e.g. a `projdeploy grow` output.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@overwrite_option
def cli(
    model, preset, data, out, resume, steps, flops, lr, seed, ckpt_every, eval_every, embedding, strategy, init, quiet
):
    """Pretrain a big projectable model (PN, hard mixture, dense) on generic data at a FLOP budget."""
    from ..train.distributed import is_main, shutdown
    from ..train.pretrain import pretrain

    res = pretrain(
        model,
        data,
        preset,
        out,
        resume=resume,
        steps=steps,
        seed=seed,
        progress=not quiet,
        embedding=embedding,
        strategy=strategy,
        ckpt_every=ckpt_every,
        flops=flops,
        lr=lr,
        eval_every=eval_every,
        init=init,
    )
    main = is_main()
    shutdown()
    if not main or model == "projector":
        return
    ev = res["eval"]
    click.echo(
        f"pretrained {model} ({preset}) on {res['data']}: {res['steps']} steps, {res['flops']:.3e} FLOPs "
        f"(budget {res['budget_flops']:.3e}), {res['seconds']:.1f}s, {res['tokens_per_s']:.0f} tokens/s; "
        f"generic eval {ev['metric']} {ev['value']:.4f} (loss {ev['loss']:.4f})"
    )
    click.echo(json.dumps({k: res[k] for k in ("out", "params", "steps", "flops", "tokens_per_s")}))
