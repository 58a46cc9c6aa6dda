"""Render a :class:`GateResult` as Markdown for a pull-request comment or a CI job summary.

    projdeploy gate --report dist/x/report.json --baseline ci/baselines/x.json >> "$GITHUB_STEP_SUMMARY"

One row per figure, in the result's order (failures first, then by how much
worse), with the baseline and current values, the relative change, the
threshold that applied and the evidence behind the verdict.
"""

from __future__ import annotations

from .compare import FigureDiff, GateResult

ICONS = {
    "missing": ":x: missing",
    "incompatible": ":x: incompatible",
    "regression": ":x: regression",
    "suspect": ":warning: suspect",
    "pass": ":white_check_mark: pass",
    "improved": ":rocket: improved",
    "new": ":new: new",
}


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if float(v).is_integer() and abs(v) < 1e15:
        s = f"{int(v):,}"
    elif abs(v) >= 100:
        s = f"{v:,.1f}"
    else:
        s = f"{v:.4g}"
    return f"{s} {unit}".strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(d: FigureDiff, which: str) -> str:
    f = d.current if which == "current" else d.baseline
    if f is None:
        return "—"
    if f.kind == "measured" and f.samples:
        import numpy as np

        return f"{_fmt(float(np.median(f.samples)), f.unit)} (median of {len(f.samples)})"
    return _fmt(f.value, f.unit)


def _change(d: FigureDiff) -> str:
    if d.change is None:
        return "—"
    if d.change == 0:
        return "0%"
    norm = " (normalised)" if d.figure.kind == "measured" else ""
    return f"{d.change:+.2%}{norm}"


def _threshold(d: FigureDiff) -> str:
    if d.status in ("new", "missing", "incompatible"):
        return "—"
    if d.tolerance is None:
        return "exact"
    return f"{d.tolerance:.0%}" if d.tolerance * 100 == round(d.tolerance * 100) else f"{d.tolerance:.2%}"


def render_markdown(result: GateResult, title: str = "projdeploy gate") -> str:
    """The full Markdown block: a one-line verdict, the table, and how to accept changes."""
    counts = result.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no figures"
    verdict = ":white_check_mark: **PASS**" if result.passed else ":x: **REGRESSION**"
    lines = [
        f"### {title}: {verdict}",
        "",
        (
            f"Report `{result.report_path}` vs baseline `{result.baseline_path}`: {summary}. "
            f"Default allowed slowdown of measured timings: {result.tolerance:.0%}."
        ),
        "",
    ]
    if result.machine_factor is not None:
        lines += [
            (
                f"Measured timings are divided by the calibration benchmark `{result.calibration.name}` run in "
                f"the same job: {result.baseline_calibration.median_s * 1e3:.3g} ms for the baseline, "
                f"{result.calibration.median_s * 1e3:.3g} ms here (this machine ran it "
                f"{result.machine_factor:.2f}x as long)."
            ),
            "",
        ]
    lines += [
        "| status | figure | artifact | profile | baseline | current | change | threshold | evidence |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for d in result.diffs:
        f = d.figure
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    ICONS[d.status],
                    f.name,
                    f.artifact,
                    f.profile or "—",
                    _value(d, "baseline"),
                    _value(d, "current"),
                    _change(d),
                    _threshold(d),
                    d.detail,
                )
            )
            + " |"
        )
    if counts.get("improved") or counts.get("new") or not result.passed:
        lines += [
            "",
            (
                "If these changes are intended, accept them with "
                f"`projdeploy gate --report {result.report_path} --baseline {result.baseline_path} "
                "--update-baseline` and commit the baseline."
            ),
        ]
    return "\n".join(lines) + "\n"
