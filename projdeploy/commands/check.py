"""``projdeploy check --artifact DIR [--artifact DIR ...] --task NAME --profile NAME [--profile ...] [--budget FILE]``.

Measures the artifact on this host, estimates it on every profile, judges the budgets and writes
report.json + report.html. Exit code 1 when any budget line fails.
"""

from __future__ import annotations

import click

from . import choices


@click.command("check")
@click.option(
    "--artifact",
    "artifacts",
    required=True,
    multiple=True,
    type=click.Path(),
    help="Artifact directory (manifest.json); repeat for one report over several.",
)
@click.option("--task", "task", required=True, help="Task name or task YAML path.")
@click.option("--profile", "profiles", type=choices.profiles(), multiple=True, required=True, help="Repeatable.")
@click.option("--budget", "budget", default=None, type=click.Path(), help="Budget file (YAML/JSON), see docs/check.md.")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(),
    help="Report directory [default: ARTIFACT-check next to the (first) artifact].",
)
@click.option("--checkpoint", default=None, type=click.Path(), help="Float checkpoint for the metric baseline.")
@click.option("--repeats", default=20, show_default=True, help="Timed runs after warm-up.")
@click.option("--warmup", default=3, show_default=True)
@click.option("--threads", default=1, show_default=True, help="Host runtime threads.")
@click.option("--metric-rows", default=256, show_default=True, help="Eval rows for the task metric.")
def cli(artifacts, task, profiles, budget, out, checkpoint, repeats, warmup, threads, metric_rows):
    """Measure and estimate an artifact against device budgets."""
    from pathlib import Path

    from ..check.run import run_check

    first = Path(artifacts[0]).resolve()
    out = out or str(first.parent / f"{first.name}-check")
    r = run_check(
        list(artifacts),
        task,
        list(profiles),
        budget_file=budget,
        out_dir=out,
        repeats=repeats,
        warmup=warmup,
        threads=threads,
        metric_rows=metric_rows,
        checkpoint=checkpoint,
    )
    for a in r.artifacts:
        click.echo(f"{a['name']}: {a['format']} {a['recipe'].get('name')} ({a['precision']}, {a['runtime']})")
        for ln in a["lines"]:
            mark = {True: "PASS", False: "FAIL", None: "----"}[ln["passed"]]
            val = "n/a" if ln["value"] is None else f"{ln['value']:.4g}"
            lim = "" if ln["limit"] is None else f" (limit {ln['limit']:.4g})"
            kind = "est" if ln["kind"] == "estimate" else ln["kind"][:4]
            click.echo(f"  {mark} {ln['name']:28s} {ln['profile'] or 'host':20s} [{kind}] {val} {ln['unit']}{lim}")
    click.echo(f"report: {r.written['json']}  {r.written['html']}")
    click.echo("PASSED" if r.passed else "FAILED")
    if not r.passed:
        raise SystemExit(1)
