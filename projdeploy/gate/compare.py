"""Compare a report's figures with a baseline's: one verdict per figure, one for the run.

    python -c "from projdeploy.gate import compare_files; print(compare_files('dist/x/report.json', 'ci/baselines/x.json').exit_code)"

Per kind (docs/gate.md has the full rules):

- ``deterministic`` (size, estimated device latency, FLOPs): equal up to float
  round-off, or within the figure's own relative ``tolerance`` when it has one.
- ``metric`` (task metric): may get worse by at most its ``tolerance``
  (relative; none means no drop allowed beyond float noise).
- ``measured`` (host latency): calibration-normalised, robust test in
  :mod:`projdeploy.gate.stats` against the figure's ``tolerance`` or the
  gate's default (``--tolerance``).

A baseline figure missing from the report fails the gate (the analogue of
"stopped running on the NPU": an artifact or profile no longer produced). A
figure only in the report is listed as new and passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..report import Calibration, Figure, FiguresFile, load_figures_file
from .stats import DEFAULT_ALPHA, TimingComparison, compare_timings

DEFAULT_TOLERANCE = 0.10
EXACT_RTOL = {"deterministic": 1e-9, "metric": 1e-6}  # float round-off, not a tolerance

FAIL = ("missing", "incompatible", "regression")
# Table order: failures first, then warnings, then the rest; within a status by change.
STATUS_ORDER = {
    s: i for i, s in enumerate(("missing", "incompatible", "regression", "suspect", "pass", "improved", "new"))
}

EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class FigureDiff:
    """The verdict on one figure key."""

    key: str
    status: str  # missing | incompatible | regression | suspect | pass | improved | new
    current: Figure | None
    baseline: Figure | None
    change: float | None  # signed relative change of the (normalised) value, + = higher
    worse_by: float | None  # relative change in the bad direction (+ = worse), for sorting
    tolerance: float | None
    detail: str = ""
    timing: TimingComparison | None = None

    @property
    def figure(self) -> Figure:
        return self.current or self.baseline

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "status": self.status,
            "change": self.change,
            "worse_by": self.worse_by,
            "tolerance": self.tolerance,
            "detail": self.detail,
            "current": self.current.to_dict() if self.current else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "timing": self.timing.to_dict() if self.timing else None,
        }


@dataclass(frozen=True)
class GateResult:
    diffs: list[FigureDiff] = field(default_factory=list)
    report_path: str = ""
    baseline_path: str = ""
    tolerance: float = DEFAULT_TOLERANCE
    calibration: Calibration | None = None  # the report's
    baseline_calibration: Calibration | None = None

    @property
    def machine_factor(self) -> float | None:
        """How much slower this job's machine ran the calibration than the baseline's (>1 = slower)."""
        if self.calibration is None or self.baseline_calibration is None:
            return None
        return self.calibration.median_s / self.baseline_calibration.median_s

    @property
    def failures(self) -> list[FigureDiff]:
        return [d for d in self.diffs if d.status in FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_REGRESSION

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.diffs:
            out[d.status] = out.get(d.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {
            "schema": "projdeploy.gate-result/1",
            "passed": self.passed,
            "exit_code": self.exit_code,
            "report": self.report_path,
            "baseline": self.baseline_path,
            "tolerance": self.tolerance,
            "machine_factor": self.machine_factor,
            "counts": self.counts(),
            "diffs": [d.to_dict() for d in self.diffs],
        }


def _rel(cur: float, base: float) -> float:
    if base == 0:
        return 0.0 if cur == 0 else float("inf") * (1 if cur > 0 else -1)
    return (cur - base) / abs(base)


def _compare_static(cur: Figure, base: Figure, tol: float | None) -> FigureDiff:
    change = _rel(cur.value, base.value)
    worse = -change if base.higher_is_better else change
    allowed = tol if tol is not None else EXACT_RTOL[base.kind]
    what = "allowed drop" if base.kind == "metric" else "tolerance"
    if worse > allowed:
        status, detail = "regression", f"worse by {worse:.2%} > {what} {allowed:.2%}"
    elif worse < -allowed:
        status, detail = "improved", f"better by {-worse:.2%}; update the baseline to lock it in"
    else:
        status, detail = "pass", ("unchanged" if change == 0 else f"within {what} {allowed:.2%}")
    return FigureDiff(cur.key, status, cur, base, change, worse, tol, detail)


def _compare_measured(
    cur: Figure, base: Figure, tol: float, cal_cur: Calibration, cal_base: Calibration, alpha: float
) -> FigureDiff:
    if cal_cur.name != cal_base.name:
        return FigureDiff(
            cur.key,
            "incompatible",
            cur,
            base,
            None,
            None,
            tol,
            f"calibration benchmark changed ({cal_base.name!r} -> {cal_cur.name!r}); "
            "timings are not comparable: update the baseline",
        )
    c = list(cur.samples) or [cur.value]
    b = list(base.samples) or [base.value]
    if base.higher_is_better:  # throughput-like: compare its reciprocal, a time
        c, b = [1 / x for x in c], [1 / x for x in b]
    t = compare_timings(c, cal_cur.samples_s, b, cal_base.samples_s, tol, alpha)
    worse = t.ratio - 1
    change = -worse / (1 + worse) if base.higher_is_better else worse
    ci = f"ratio {t.ratio:.3f} ({1 - 2 * alpha:.0%} CI {t.ci_low:.3f}-{t.ci_high:.3f})"
    if t.slower:
        status, detail = "regression", f"{ci} > 1+{tol:.0%}, Mann-Whitney p={t.p_slower:.1g}"
    elif t.faster:
        status, detail = "improved", f"{ci} < 1-{tol:.0%}, Mann-Whitney p={t.p_faster:.1g}"
    elif not t.enough:
        status = "suspect" if worse > tol else "pass"
        detail = f"{ci}; only {t.n_cur}/{t.n_base} samples, need 5 per side to decide"
    elif worse > tol:
        status, detail = "suspect", f"{ci}: above 1+{tol:.0%} but not confidently (noise); not failed"
    else:
        status, detail = "pass", f"{ci}, normalised by calibration {cal_cur.name!r}"
    return FigureDiff(cur.key, status, cur, base, change, worse, tol, detail, t)


def compare(
    report: FiguresFile, baseline: FiguresFile, tolerance: float = DEFAULT_TOLERANCE, alpha: float = DEFAULT_ALPHA
) -> GateResult:
    """Compare every figure of ``baseline`` with ``report``; see the module docstring for the rules.

    ``tolerance`` is the relative slowdown allowed for measured figures
    without their own tolerance. Returns the per-figure verdicts, sorted for
    the table: failures first, then by how much worse.
    """
    diffs: list[FigureDiff] = []
    for key, base in baseline.figures.items():
        cur = report.figures.get(key)
        if cur is None:
            diffs.append(
                FigureDiff(
                    key,
                    "missing",
                    None,
                    base,
                    None,
                    None,
                    base.tolerance,
                    f"in the baseline but not in the report: {base.artifact} "
                    f"{base.profile or ''} {base.name} is no longer produced".replace("  ", " "),
                )
            )
            continue
        if (cur.kind, cur.unit, cur.higher_is_better) != (base.kind, base.unit, base.higher_is_better):
            diffs.append(
                FigureDiff(
                    key,
                    "incompatible",
                    cur,
                    base,
                    None,
                    None,
                    None,
                    f"kind/unit/direction changed: baseline ({base.kind}, {base.unit!r}, "
                    f"higher_is_better={base.higher_is_better}) vs report ({cur.kind}, "
                    f"{cur.unit!r}, higher_is_better={cur.higher_is_better})",
                )
            )
            continue
        # The committed baseline states the agreed tolerance; the report's is the fallback.
        tol = base.tolerance if base.tolerance is not None else cur.tolerance
        if base.kind == "measured":
            diffs.append(
                _compare_measured(
                    cur, base, tolerance if tol is None else tol, report.calibration, baseline.calibration, alpha
                )
            )
        else:
            diffs.append(_compare_static(cur, base, tol))
    for key, cur in report.figures.items():
        if key not in baseline.figures:
            diffs.append(
                FigureDiff(
                    key,
                    "new",
                    cur,
                    None,
                    None,
                    None,
                    cur.tolerance,
                    "not in the baseline; add it with --update-baseline",
                )
            )
    diffs.sort(key=lambda d: (STATUS_ORDER[d.status], -(d.worse_by if d.worse_by is not None else 0), d.key))
    return GateResult(diffs, report.path, baseline.path, tolerance, report.calibration, baseline.calibration)


def compare_files(
    report_path, baseline_path, tolerance: float = DEFAULT_TOLERANCE, alpha: float = DEFAULT_ALPHA
) -> GateResult:
    """:func:`compare` on two files; bad files raise :class:`ConfigError` / :class:`DataError`."""
    return compare(load_figures_file(report_path), load_figures_file(baseline_path), tolerance, alpha)
