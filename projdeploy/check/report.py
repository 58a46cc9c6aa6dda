"""report.json (schema ``projdeploy.report/1``): build, validate, merge and write reports.

    python -c "from projdeploy.check.report import read_report; print(read_report('out/report.json')['passed'])"

The JSON is for machines (the gate reads ``figures`` and ``calibration``); ``html.py`` renders
the same dict for people. Full schema: docs/check.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

SCHEMA = "projdeploy.report/1"
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
FIG_FIELDS = {
    "key": str,
    "artifact": str,
    "profile": (str, type(None)),
    "name": str,
    "value": (int, float),
    "unit": str,
    "kind": str,
    "higher_is_better": bool,
    "tolerance": (int, float, type(None)),
    "samples": list,
}
FIG_KINDS = ("deterministic", "metric", "measured")


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
    assert kind in FIG_KINDS, kind
    key = f"{artifact}/{profile or 'host'}/{name}"
    return {
        "key": key,
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
    """Check the schema; raise ConfigError naming the first bad field."""
    if not isinstance(r, dict):
        raise ConfigError(source, "(top level)", "must be a JSON object")
    if r.get("schema") != SCHEMA:
        raise ConfigError(source, "schema", f"is {r.get('schema')!r}; supported: {SCHEMA}")
    for k, t in TOP.items():
        if k not in r:
            raise ConfigError(source, k, "is required")
        if not isinstance(r[k], t):
            raise ConfigError(source, k, f"must be {t.__name__}")
    cal = r["calibration"]
    for k in ("name", "samples_s", "median_s"):
        if k not in cal:
            raise ConfigError(source, f"calibration.{k}", "is required")
    keys = set()
    for i, f in enumerate(r["figures"]):
        for k, t in FIG_FIELDS.items():
            if k not in f or not isinstance(f[k], t) or (k == "value" and isinstance(f[k], bool)):
                raise ConfigError(source, f"figures[{i}].{k}", f"missing or not {t}")
        if f["kind"] not in FIG_KINDS:
            raise ConfigError(source, f"figures[{i}].kind", f"must be one of {', '.join(FIG_KINDS)}")
        if f["key"] in keys:
            raise ConfigError(source, f"figures[{i}].key", f"duplicate key {f['key']!r}")
        keys.add(f["key"])
    for i, a in enumerate(r["artifacts"]):
        for k in ("name", "format", "lines", "passed", "estimates"):
            if k not in a:
                raise ConfigError(source, f"artifacts[{i}].{k}", "is required")
    return r


def merge_reports(reports: list[dict]) -> dict:
    """One report from several (e.g. every artifact of one build); artifact names must be distinct.

    The first report's calibration and host are kept (runs of one job share them); the others' calibrations
    are kept under ``calibration["others"]``.
    """
    if not reports:
        raise ValueError("merge_reports needs at least one report")
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
    from ..fsutil import atomic_write_json, atomic_write_text
    from .html import render_html

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
