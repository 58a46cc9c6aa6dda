"""The CI regression gate: compare a build's report.json with a committed baseline.

    projdeploy gate --report dist/digits-cls-linux/report.json --baseline ci/baselines/digits-cls-linux.json

Python API::

    from projdeploy.gate import compare_files, render_markdown
    result = compare_files("report.json", "baseline.json", tolerance=0.10)
    print(render_markdown(result)); raise SystemExit(result.exit_code)

Rules and statistics: docs/gate.md.
"""

from ..report import (
    BASELINE_SCHEMA,
    REPORT_SCHEMA,
    Calibration,
    Figure,
    FiguresFile,
    load_figures_file,
    parse_figures,
    write_baseline,
)
from .compare import (
    DEFAULT_TOLERANCE,
    EXIT_ERROR,
    EXIT_PASS,
    EXIT_REGRESSION,
    FigureDiff,
    GateResult,
    compare,
    compare_files,
)
from .stats import TimingComparison, compare_timings
from .table import render_markdown

__all__ = [
    "BASELINE_SCHEMA",
    "DEFAULT_TOLERANCE",
    "EXIT_ERROR",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "REPORT_SCHEMA",
    "Calibration",
    "Figure",
    "FigureDiff",
    "FiguresFile",
    "GateResult",
    "TimingComparison",
    "compare",
    "compare_files",
    "compare_timings",
    "load_figures_file",
    "parse_figures",
    "render_markdown",
    "write_baseline",
]
