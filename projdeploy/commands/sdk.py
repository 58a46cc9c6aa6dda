"""``projdeploy sdk --artifact DIR --target ios|android|web --out DIR [--check]``."""

from __future__ import annotations

import click

from ..layout import overwrite_option
from . import choices


@click.command("sdk")
@click.option("--artifact", type=click.Path(), default=None, help="Artifact directory (with manifest.json).")
@click.option(
    "--target",
    type=choices.sdk_targets(),
    default=None,
    help="web: TypeScript + onnxruntime-web (onnx); ios: Swift package (executorch .pte or "
    "Core ML); android: Kotlin library (executorch .pte).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Package directory (replaced).")
@click.option("--check", is_flag=True, help="Only check that the generated files in --out are up to date.")
@overwrite_option
def cli(artifact, target, out, check):
    """Generate a typed package (pre/post-processing, self-test, bundled model) around an artifact."""
    from ..errors import ConfigError
    from ..sdk import check_generated, generate

    if check:
        problems = check_generated(out)
        for p in problems:
            click.echo(f"{out}/{p}", err=True)
        if problems:
            raise click.exceptions.Exit(1)
        click.echo(f"{out}: generated files are up to date")
        return
    if artifact is None or target is None:
        raise ConfigError("projdeploy sdk", "--artifact/--target", "both are required unless --check is given")
    path = generate(artifact, target, out)
    click.echo(f"written: {path} ({target} package)")
