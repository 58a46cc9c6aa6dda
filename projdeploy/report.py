"""Reports and gate baselines: the one module that builds, validates, reads and writes them.

    python -c "from projdeploy.report import read_report; print(read_report('dist/x/report.json')['passed'])"

``check`` writes a report (schema ``projdeploy.report/1``): every artifact's
measured and estimated figures against its budgets. ``gate`` compares a
report's flat ``figures`` list with a committed baseline (schema
``projdeploy.gate-baseline/1``, written by ``projdeploy gate --update-baseline``;
a full report is accepted as a baseline too). When any figure is
``measured``, a ``calibration`` block (``projdeploy.check.calibration``) makes
host timings comparable across machines. Both files are validated here, once;
every problem raises :class:`ConfigError` naming the file and the field.
The JSON is for machines; ``check/html.py`` renders the same dict for people.
Full schema: docs/check.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DataError

SCHEMA = REPORT_SCHEMA = "projdeploy.report/1"
BASELINE_SCHEMA = "projdeploy.gate-baseline/1"
SCHEMAS = (REPORT_SCHEMA, BASELINE_SCHEMA)
KINDS = FIG_KINDS = ("deterministic", "metric", "measured")
TOP = {
    "schema": str,
    "created_by": str,
    "host": dict,
    "calibration": dict,
    "artifacts": list,
    "profiles": dict,
    "figures": list,
    "passed": bool,
}
ARTIFACT_FIELDS = ("name", "format", "lines", "passed", "estimates")


@dataclass(frozen=True)
class Figure:
    """One number of a report, as the gate sees it."""

    key: str
    artifact: str
    profile: str | None
    name: str
    value: float
    unit: str
    kind: str
    higher_is_better: bool
    tolerance: float | None = None
    samples: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        d = {
            "key": self.key,
            "artifact": self.artifact,
            "profile": self.profile,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "tolerance": self.tolerance,
        }
        if self.kind == "measured":
            d["samples"] = list(self.samples)
        return d


@dataclass(frozen=True)
class Calibration:
    """The fixed CPU micro-benchmark timed in the same job as the measured figures."""

    name: str
    samples_s: tuple[float, ...]
    median_s: float

    def to_dict(self) -> dict:
        return {"name": self.name, "samples_s": list(self.samples_s), "median_s": self.median_s}


@dataclass(frozen=True)
class FiguresFile:
    path: str
    schema: str
    figures: dict[str, Figure] = field(default_factory=dict)
    calibration: Calibration | None = None


def _num(src: str, fld: str, v, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(src, fld, f"must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise ConfigError(src, fld, f"must be > 0, got {v!r}")
    return float(v)


def _samples(src: str, fld: str, v, positive: bool = True) -> tuple[float, ...]:
    if not isinstance(v, list):
        raise ConfigError(src, fld, f"must be a list of numbers, got {type(v).__name__}")
    return tuple(_num(src, f"{fld}[{i}]", x, positive) for i, x in enumerate(v))


def _figure(src: str, i: int, d) -> Figure:
    where = f"figures[{i}]"
    if not isinstance(d, dict):
        raise ConfigError(src, where, "must be an object")
    for k in ("key", "artifact", "name", "value", "unit", "kind", "higher_is_better"):
        if k not in d:
            raise ConfigError(src, f"{where}.{k}", "is missing")
    for k in ("key", "artifact", "name", "unit"):
        if not isinstance(d[k], str) or (k != "unit" and not d[k]):
            raise ConfigError(src, f"{where}.{k}", f"must be a non-empty string, got {d[k]!r}")
    if d.get("profile") is not None and not isinstance(d["profile"], str):
        raise ConfigError(src, f"{where}.profile", f"must be a string or null, got {d['profile']!r}")
    if d["kind"] not in KINDS:
        raise ConfigError(src, f"{where}.kind", f"must be one of {', '.join(KINDS)}; got {d['kind']!r}")
    if not isinstance(d["higher_is_better"], bool):
        raise ConfigError(src, f"{where}.higher_is_better", f"must be true or false, got {d['higher_is_better']!r}")
    tol = d.get("tolerance")
    if tol is not None:
        tol = _num(src, f"{where}.tolerance", tol)
        if tol < 0:
            raise ConfigError(src, f"{where}.tolerance", f"must be >= 0 (relative), got {tol}")
    samples: tuple[float, ...] = ()
    if d["kind"] == "measured":
        samples = _samples(src, f"{where}.samples", d.get("samples", []))
    return Figure(
        key=d["key"],
        artifact=d["artifact"],
        profile=d.get("profile"),
        name=d["name"],
        value=_num(src, f"{where}.value", d["value"]),
        unit=d["unit"],
        kind=d["kind"],
        higher_is_better=d["higher_is_better"],
        tolerance=tol,
        samples=samples,
    )


def _calibration(src: str, d) -> Calibration:
    if not isinstance(d, dict):
        raise ConfigError(src, "calibration", "must be an object {name, samples_s, median_s}")
    for k in ("name", "samples_s", "median_s"):
        if k not in d:
            raise ConfigError(src, f"calibration.{k}", "is missing")
    if not isinstance(d["name"], str) or not d["name"]:
        raise ConfigError(src, "calibration.name", f"must be a non-empty string, got {d['name']!r}")
    samples = _samples(src, "calibration.samples_s", d["samples_s"])
    if not samples:
        raise ConfigError(src, "calibration.samples_s", "must hold at least one timing")
    return Calibration(d["name"], samples, _num(src, "calibration.median_s", d["median_s"], positive=True))


def parse_figures(obj, src: str = "<report>") -> FiguresFile:
    """Validate a decoded report or baseline; ``src`` names it in errors."""
    if not isinstance(obj, dict):
        raise ConfigError(src, "<top level>", "must be a JSON object")
    schema = obj.get("schema")
    if schema not in SCHEMAS:
        raise ConfigError(src, "schema", f"must be one of {', '.join(SCHEMAS)}; got {schema!r}")
    if "figures" not in obj:
        raise ConfigError(src, "figures", "is missing (the flat list of figures the gate compares)")
    if not isinstance(obj["figures"], list):
        raise ConfigError(src, "figures", f"must be a list, got {type(obj['figures']).__name__}")
    figures: dict[str, Figure] = {}
    for i, d in enumerate(obj["figures"]):
        f = _figure(src, i, d)
        if f.key in figures:
            raise ConfigError(src, f"figures[{i}].key", f"duplicate key {f.key!r}")
        figures[f.key] = f
    cal = obj.get("calibration")
    cal = None if cal is None else _calibration(src, cal)
    if cal is None and any(f.kind == "measured" for f in figures.values()):
        raise ConfigError(
            src,
            "calibration",
            "is missing but the file has measured figures; "
            "measured host latency is only comparable when normalised by the calibration run",
        )
    return FiguresFile(path=src, schema=schema, figures=figures, calibration=cal)


def load_figures_file(path: str | Path) -> FiguresFile:
    """Read and validate a report.json or a gate baseline (its figures and calibration)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "<json>", f"not valid JSON: {e}") from None
    return parse_figures(obj, str(path))


def baseline_dict(report: FiguresFile) -> dict:
    """The baseline a report becomes: its figures and calibration, nothing host-specific beyond that."""
    from . import __version__

    out = {
        "schema": BASELINE_SCHEMA,
        "generated_by": f"projdeploy {__version__} gate --update-baseline",
        "source_schema": report.schema,
        "figures": [f.to_dict() for f in sorted(report.figures.values(), key=lambda f: f.key)],
    }
    if report.calibration is not None:
        out["calibration"] = report.calibration.to_dict()
    return out


def write_baseline(report: FiguresFile, path: str | Path) -> Path:
    """Write ``report`` as the new baseline at ``path`` atomically (temp file + rename)."""
    from .fsutil import atomic_write_json

    atomic_write_json(path, baseline_dict(report))
    return Path(path)


# --- reports (check) -----------------------------------------------------------------------------


def figure(
    artifact: str,
    profile: str | None,
    name: str,
    value: float,
    unit: str,
    kind: str,
    *,
    higher_is_better: bool = False,
    tolerance: float | None = None,
    samples=None,
) -> dict:
    """One figure of a report, as JSON (``samples`` are kept for every kind)."""
    if kind not in KINDS:
        raise ConfigError(f"figure {artifact}/{name}", "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    return {
        "key": f"{artifact}/{profile or 'host'}/{name}",
        "artifact": artifact,
        "profile": profile,
        "name": name,
        "value": float(value),
        "unit": unit,
        "kind": kind,
        "higher_is_better": higher_is_better,
        "tolerance": tolerance,
        "samples": [float(s) for s in (samples or [])],
    }


def validate_report(r: dict, source: str = "report") -> dict:
    """Check a report (top level, artifacts, and its figures and calibration as the gate reads them)."""
    if not isinstance(r, dict):
        raise ConfigError(source, "(top level)", "must be a JSON object")
    if r.get("schema") != REPORT_SCHEMA:
        raise ConfigError(source, "schema", f"is {r.get('schema')!r}; supported: {REPORT_SCHEMA}")
    for k, t in TOP.items():
        if k not in r:
            raise ConfigError(source, k, "is required")
        if not isinstance(r[k], t):
            raise ConfigError(source, k, f"must be {t.__name__}")
    parse_figures(r, source)
    for i, a in enumerate(r["artifacts"]):
        for k in ARTIFACT_FIELDS:
            if k not in a:
                raise ConfigError(source, f"artifacts[{i}].{k}", "is required")
    return r


def merge_reports(reports: list[dict]) -> dict:
    """One report from several (e.g. every artifact of one build); artifact names must be distinct.

    The first report's calibration and host are kept (runs of one job share them); the others' calibrations
    are kept under ``calibration["others"]``.
    """
    if not reports:
        raise ConfigError("merge_reports", "reports", "needs at least one report")
    for i, r in enumerate(reports):
        validate_report(r, f"report #{i}")
    out = json.loads(json.dumps(reports[0]))
    names = {a["name"] for a in out["artifacts"]}
    others = []
    for r in reports[1:]:
        for a in r["artifacts"]:
            if a["name"] in names:
                raise ConfigError(
                    "merge_reports",
                    "artifacts.name",
                    f"{a['name']!r} appears in two reports; give the artifacts distinct directory names",
                )
            names.add(a["name"])
            out["artifacts"].append(a)
        out["profiles"].update(r["profiles"])
        out["figures"].extend(r["figures"])
        others.append(r["calibration"])
    if others:
        out["calibration"]["others"] = others
    out["passed"] = all(a["passed"] is not False for a in out["artifacts"])
    return validate_report(out, "merged report")


def write_report(report: dict, out_dir: str | Path) -> dict:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (each file atomically)."""
    from .check.html import render_html
    from .fsutil import atomic_write_json, atomic_write_text

    validate_report(report)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.html", render_html(report))
    return {"json": str(out / "report.json"), "html": str(out / "report.html")}


def read_report(path: str | Path) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise ConfigError(str(p), "(file)", "report file does not exist")
    try:
        return validate_report(json.loads(p.read_text()), str(p))
    except json.JSONDecodeError as e:
        raise ConfigError(str(p), "(json)", f"not valid JSON: {e}") from None


@dataclass(frozen=True)
class Report:
    """A validated report: typed where the pipeline reads it (``passed``, ``figures``, ``calibration``,
    ``artifacts``), the JSON object as written (``to_dict()``, read-only item access ``report["..."]``).
    ``written``: the paths of report.json / report.html once written."""

    data: dict
    figures: FiguresFile
    written: dict | None = None

    @classmethod
    def from_dict(cls, d: dict, source: str = "report") -> Report:
        validate_report(d, source)
        d = json.loads(json.dumps(d))  # a private copy: the report cannot change after validation
        return cls(d, parse_figures(d, source))

    @classmethod
    def read(cls, path: str | Path) -> Report:
        p = Path(path)
        return cls.from_dict(read_report(p), str(p / "report.json" if p.is_dir() else p))

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])

    @property
    def calibration(self) -> Calibration:
        return self.figures.calibration

    @property
    def artifacts(self) -> tuple[dict, ...]:
        return tuple(self.data["artifacts"])

    def __getitem__(self, key: str):
        return self.data[key]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.data))

    def write(self, out_dir: str | Path) -> Report:
        """This report written into ``out_dir`` (report.json + report.html); returns it with ``written`` set."""
        import dataclasses

        return dataclasses.replace(self, written=write_report(self.data, out_dir))
