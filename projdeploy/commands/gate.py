"""``projdeploy gate --report REPORT.json --baseline BASELINE.json [--tolerance 10%] [--update-baseline]``.

Exit codes: 0 pass, 1 regression (or a baseline figure missing from the
report), 2 error (missing file, wrong schema: the message names the file and
field). Prints a Markdown table, regressions first, for a PR comment or
``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

from pathlib import Path

import click


def parse_tolerance(text: str) -> float:
    """``"10%"`` -> 0.10, ``"0.1"`` -> 0.1; a bare number above 1 is refused (say ``"150%"``)."""
    from ..errors import ConfigError

    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ConfigError("--tolerance", "tolerance", f"must be like '10%' or 0.1, got {text!r}") from None
    if not t.endswith("%") and v > 1:
        raise ConfigError("--tolerance", "tolerance", f"{text!r} is ambiguous: write '{t}%' or {v / 100:g}")
    if not 0 <= v < 10:
        raise ConfigError("--tolerance", "tolerance", f"must be between 0% and 1000%, got {text!r}")
    return v


@click.command("gate")
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="report.json written by `projdeploy check` / `projdeploy build`.",
)
@click.option(
    "--baseline",
    "baseline_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Committed baseline (a gate baseline or an earlier report.json).",
)
@click.option(
    "--tolerance",
    default="10%",
    show_default=True,
    help="Allowed slowdown of measured timings that have no tolerance of their own.",
)
@click.option(
    "--update-baseline", is_flag=True, help="Accept the report: write it as the new baseline (atomically) and exit 0."
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also append the Markdown table to this file (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the full per-figure result as JSON.",
)
@click.pass_context
def cli(ctx, report_path, baseline_path, tolerance, update_baseline, markdown_path, json_path):
    """Compare a build report with a baseline; exit 0 pass, 1 regression, 2 error."""
    from ..errors import ProjdeployError
    from ..fsutil import atomic_write_json
    from ..gate import compare, load_figures_file, render_markdown, write_baseline

    tol = parse_tolerance(tolerance)
    report = load_figures_file(report_path)
    baseline = None
    if Path(baseline_path).exists() or not update_baseline:
        try:
            baseline = load_figures_file(baseline_path)
        except ProjdeployError as e:
            if not update_baseline:
                raise
            click.echo(f"warning: replacing unreadable baseline ({e})", err=True)

    result = None
    if baseline is not None:
        result = compare(report, baseline, tol)
        md = render_markdown(result)
        click.echo(md, nl=False)
        if markdown_path:
            with open(markdown_path, "a") as f:
                f.write(md + "\n")
        if json_path:
            atomic_write_json(json_path, result.to_dict())

    if update_baseline:
        write_baseline(report, baseline_path)
        click.echo(f"baseline written: {baseline_path} ({len(report.figures)} figures); commit it.", err=True)
        return
    if result is not None and not result.passed:
        click.echo(f"gate: REGRESSION ({len(result.failures)} failing figure(s))", err=True)
        ctx.exit(result.exit_code)
