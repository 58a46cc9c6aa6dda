"""``projdeploy profiles list`` / ``projdeploy profiles show NAME`` (a shipped name or a YAML path)."""

from __future__ import annotations

import json

import click


@click.group("profiles")
def cli():
    """List and inspect device hardware profiles (YAML data with sources)."""


@cli.command("list")
def list_profiles():
    """Every known profile: shipped ones and those in $PROJDEPLOY_PROFILES directories."""
    from ..check.profiles import get_profile, profile_files

    for name, _path in profile_files().items():
        p = get_profile(name)
        click.echo(f"{name:20s} {p.title}  [{', '.join(p.runtimes)}]")
    click.echo(
        "\nAdd your own: a YAML file (schema in docs/check.md) passed by path, or a directory in $PROJDEPLOY_PROFILES."
    )


@cli.command("show")
@click.argument("name")
@click.option("--runtime", default=None, help="Also print the numbers the estimator uses for this runtime.")
@click.option("--precision", default="fp32", show_default=True)
def show(name, runtime, precision):
    """Print a profile as JSON (with its sources); --runtime adds resolved estimator parameters."""
    from ..check.profiles import get_profile

    p = get_profile(name)
    out = dict(p.raw)
    out["_path"] = p.path
    if runtime:
        from ..check.estimator import resolve_params

        out["_resolved"] = resolve_params(p, runtime, precision).to_dict()
    click.echo(json.dumps(out, indent=2, default=str))
