"""``projdeploy export --checkpoint DIR --format executorch|coreml|onnx --recipe NAME --task NAME --out DIR``.

    projdeploy export --list-recipes
    projdeploy export --checkpoint runs/cls --format onnx --recipe fp32 --task digits-cls --out out/cls-onnx

Validation is on by default; a failed check (parity, SQNR, metric drop)
prints the figures and exits non-zero without leaving an artifact behind.
"""

from __future__ import annotations

import json

import click

from ..layout import overwrite_option
from . import choices


def _list_recipes() -> None:
    from exporters.registry import formats

    for fmt in formats():
        state = "available" if fmt.available() else "NOT available on this machine"
        click.echo(f"{fmt.name} ({state})")
        for title, table in (("", fmt.recipes), ("LM programs (LM tasks): ", fmt.lm_recipes)):
            if title and table:
                click.echo(f"  {title}")
            for r in table.values():
                d = {k: v for k, v in r.to_dict().items() if k not in ("name", "format", "description")}
                click.echo(f"  {r.name:<18} v{r.version}  {r.description}")
                click.echo(f"  {'':<18}      {json.dumps(d, sort_keys=True)}")


def _echo_lm_program(art) -> None:
    v, lm = art.validation, art.model["lm"]
    click.echo(f"wrote {art.path} ({art.main_file}, {art.size_bytes} bytes, window {lm['max_seq_len']} tokens)")
    if v.get("passed"):
        click.echo(
            f"validated on {v['positions']} positions: top-1 agreement {v['top1_agreement']:.3f}, "
            f"max|diff| {v['max_abs_diff']:.3g} (logit scale {v['logit_scale']:.3g}), "
            f"{v['metric']} {v['metric_float']:.4f} -> {v['metric_artifact']:.4f}"
        )
    if "delegation" in v:
        click.echo(f"delegated to {v['delegation']['backend']}: {v['delegation']['fraction']:.0%} of operators")
    if v.get("runtime"):
        click.echo(f"note: {v['runtime']}; not validated here")


@click.command("export")
@click.option(
    "--checkpoint",
    type=click.Path(),
    help="Small checkpoint, local Hugging Face checkpoint dir, .gguf file or built-in model name (projdeploy models list).",
)
@click.option("--format", "fmt", type=choices.formats(), help="Package format.")
@click.option("--recipe", type=choices.recipes(), help="Recipe name (see --list-recipes).")
@click.option("--task", "task_name", help="Task whose eval inputs validate the artifact.")
@click.option("--out", type=click.Path(), help="Artifact directory to write (replaced atomically).")
@click.option("--no-validate", is_flag=True, help="Skip parity/metric validation (not recommended).")
@click.option("--max-rows", type=int, default=256, show_default=True, help="Eval rows used for validation.")
@click.option("--list-recipes", is_flag=True, help="Print every format's recipes and exit.")
@click.option(
    "--lm-program",
    is_flag=True,
    hidden=True,
    help="Accepted for compatibility: LM tasks always export LM programs (docs/lm-programs.md).",
)
@overwrite_option
def cli(checkpoint, fmt, recipe, task_name, out, no_validate, max_rows, list_recipes, lm_program):
    """Quantize and convert a checkpoint to an ExecuTorch, Core ML or ONNX package, validated."""
    if list_recipes:
        _list_recipes()
        return
    missing = [
        n
        for n, v in (
            ("--checkpoint", checkpoint),
            ("--format", fmt),
            ("--recipe", recipe),
            ("--task", task_name),
            ("--out", out),
        )
        if not v
    ]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use --list-recipes)")
    from exporters.api import export_checkpoint

    art = export_checkpoint(checkpoint, fmt, recipe, task_name, out, validate=not no_validate, max_rows=max_rows)
    if isinstance(art.model.get("lm"), dict):
        _echo_lm_program(art)
        return
    v = art.validation
    click.echo(f"wrote {art.path} ({art.main_file}, {art.size_bytes} bytes)")
    if v.get("passed"):
        line = (
            f"validated on {v['rows']} eval rows{' (simulated)' if v.get('simulated') else ''}: "
            f"max|diff| {v['max_abs_diff']:.3g}, SQNR {v['sqnr_db']:.1f} dB, {v['metric']} "
            f"{v['metric_float']:.4f} -> {v['metric_artifact']:.4f}"
        )
        click.echo(line)
    if "delegation" in v:
        click.echo(f"delegated to {v['delegation']['backend']}: {v['delegation']['fraction']:.0%} of operators")
    if v.get("runtime"):
        click.echo(f"note: {v['runtime']}")
