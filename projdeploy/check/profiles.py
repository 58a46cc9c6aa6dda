"""Device hardware profiles: YAML data with a source for every number.

    projdeploy profiles list
    python -c "from projdeploy.check.profiles import get_profile; print(get_profile('pixel-8').title)"

Shipped profiles live in ``projdeploy/profiles/*.yaml`` (package data; files starting
with ``_`` are shared tables, not devices). Users add their own by passing a YAML
path wherever a profile name is accepted, or by listing directories in the
``PROJDEPLOY_PROFILES`` environment variable (``os.pathsep``-separated).

Every number is ``{value: <number or null>, source: <id or null>, note: <text>}``;
``value: null`` means "not known" and the estimator states what it assumed instead.
Schema: docs/check.md.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, UnknownNameError

SCHEMA = "projdeploy.profile/1"
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4", "w8a16")
UNITS = ("cpu", "gpu", "npu")
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "profiles"
TOP_FIELDS = {
    "schema",
    "name",
    "title",
    "os",
    "soc",
    "cpu_clusters",
    "ram_mb",
    "app_memory_budget_mb",
    "memory_bandwidth_gbs",
    "accelerators",
    "units",
    "runtimes",
    "sources",
    "notes",
}
RUNTIME_FIELDS = {
    "unit",
    "family",
    "threads",
    "description",
    "precisions",
    "dispatch_us",
    "token_overhead_ms",
    "runtime_overhead_mb",
    "cold_start_factor",
    "bandwidth_eff",
}
PREC_FIELDS = {"peak_gflops", "compute_eff"}


@dataclass(frozen=True)
class Number:
    value: float | None
    source: str | None
    note: str = ""

    def to_dict(self) -> dict:
        return {"value": self.value, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class RuntimeProfile:
    name: str
    unit: str
    family: str | None  # a runtime family of profiles/_runtimes.yaml (fitted efficiencies), or None
    threads: int | None
    description: str
    precisions: dict  # precision -> {"peak_gflops": Number, "compute_eff": Number}
    dispatch_us: Number
    token_overhead_ms: Number
    runtime_overhead_mb: Number
    cold_start_factor: Number
    bandwidth_eff: Number


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    os: str
    soc: str
    soc_source: str | None
    cpu_clusters: tuple
    ram_mb: Number
    app_memory_budget_mb: Number
    memory_bandwidth_gbs: Number
    accelerators: tuple
    units: dict  # kind (cpu|gpu|npu) -> ComputeUnit
    runtimes: dict  # name -> RuntimeProfile
    sources: dict  # id -> url
    path: str
    raw: dict = field(default_factory=dict, hash=False, compare=False, repr=False)

    def source_url(self, sid: str | None) -> str | None:
        return self.sources.get(sid) if sid else None


@dataclass(frozen=True)
class ComputeUnit:
    """One compute unit of a device: peak throughput per precision and the memory bandwidth it sees."""

    kind: str
    name: str
    peak_gflops: dict  # precision -> Number
    bandwidth_gbs: Number  # value None: the device's memory_bandwidth_gbs

    def peak(self, precision: str) -> Number:
        return self.peak_gflops.get(precision) or Number(None, None, f"{precision} not listed for {self.name}")


def _units(data, src: str, sources: dict) -> dict:
    units = {}
    if not isinstance(data, dict):
        raise ConfigError(src, "units", f"must map unit kinds ({', '.join(UNITS)}) to their figures")
    for kind, u in data.items():
        f = f"units.{kind}"
        if kind not in UNITS:
            raise ConfigError(src, f, f"unknown unit kind; allowed: {', '.join(UNITS)}")
        if not isinstance(u, dict) or set(u) - {"name", "peak_gflops", "bandwidth_gbs"}:
            raise ConfigError(src, f, "allowed fields: name, peak_gflops, bandwidth_gbs")
        peaks = {}
        for prec, n in (u.get("peak_gflops") or {}).items():
            if prec not in PRECISIONS:
                raise ConfigError(
                    src, f"{f}.peak_gflops.{prec}", f"unknown precision; allowed: {', '.join(PRECISIONS)}"
                )
            peaks[prec] = _num(n, src, f"{f}.peak_gflops.{prec}", sources)
        bw = _num(u.get("bandwidth_gbs"), src, f + ".bandwidth_gbs", sources, required=False)
        units[kind] = ComputeUnit(kind, str(u.get("name", kind)), peaks, bw)
    return units


def _num(d, src: str, fld: str, known_sources: dict, required=True) -> Number:
    if d is None and not required:
        return Number(None, None, "not given")
    if not isinstance(d, dict) or "value" not in d or "source" not in d:
        raise ConfigError(src, fld, "must be a mapping {value: number|null, source: id|null, note: text}")
    extra = set(d) - {"value", "source", "note"}
    if extra:
        raise ConfigError(src, f"{fld}.{sorted(extra)[0]}", "unknown field; allowed: value, source, note")
    v, s = d["value"], d["source"]
    if v is not None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(src, fld, f"value must be a non-negative number or null, got {v!r}")
        if not s:
            raise ConfigError(src, fld, "a number needs a source id (see the profile's 'sources')")
    if s is not None:
        for part in str(s).replace(",", " ").split():
            if part not in known_sources:
                raise ConfigError(
                    src,
                    f"{fld}.source",
                    f"source id {part!r} is not listed in 'sources' (known: {', '.join(sorted(known_sources))})",
                )
    return Number(None if v is None else float(v), None if s is None else str(s), str(d.get("note", "")))


def parse_profile(data: dict, src: str) -> Profile:
    _check_top(data, src)
    sources, soc = data["sources"], data["soc"]
    clusters = _clusters(data, src, sources)
    accs = _accelerators(data, src, sources)
    if not isinstance(data["runtimes"], dict) or not data["runtimes"]:
        raise ConfigError(src, "runtimes", "must map at least one runtime name to its figures")
    runtimes = {rname: _runtime(rname, r, src, sources) for rname, r in data["runtimes"].items()}
    return Profile(
        name=str(data["name"]),
        title=str(data["title"]),
        os=str(data.get("os", "")),
        soc=soc["value"],
        soc_source=soc.get("source"),
        cpu_clusters=tuple(clusters),
        ram_mb=_num(data["ram_mb"], src, "ram_mb", sources),
        app_memory_budget_mb=_num(data["app_memory_budget_mb"], src, "app_memory_budget_mb", sources),
        memory_bandwidth_gbs=_num(data["memory_bandwidth_gbs"], src, "memory_bandwidth_gbs", sources),
        accelerators=tuple(accs),
        units=_units(data.get("units") or {}, src, sources),
        runtimes=runtimes,
        sources=dict(sources),
        path=src,
        raw=data,
    )


def _check_top(data: dict, src: str) -> None:
    """The top-level fields: schema, no unknown fields, the required ones, sources and soc shapes."""
    if not isinstance(data, dict):
        raise ConfigError(src, "(top level)", "must be a mapping")
    if data.get("schema") != SCHEMA:
        raise ConfigError(src, "schema", f"is {data.get('schema')!r}; supported: {SCHEMA}")
    extra = set(data) - TOP_FIELDS
    if extra:
        raise ConfigError(src, sorted(extra)[0], f"unknown field; allowed: {', '.join(sorted(TOP_FIELDS))}")
    for req in (
        "name",
        "title",
        "soc",
        "sources",
        "runtimes",
        "memory_bandwidth_gbs",
        "ram_mb",
        "app_memory_budget_mb",
        "cpu_clusters",
    ):
        if req not in data:
            raise ConfigError(src, req, "is required")
    sources = data["sources"]
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ConfigError(src, "sources", "must map source ids to URLs or descriptions")
    soc = data["soc"]
    if not isinstance(soc, dict) or not isinstance(soc.get("value"), str):
        raise ConfigError(src, "soc", "must be {value: name, source: id}")
    if set(soc) - {"value", "source", "note"}:  # e.g. an unquoted comma in a YAML flow mapping
        raise ConfigError(
            src,
            f"soc.{sorted(set(soc) - {'value', 'source', 'note'})[0]}",
            "unknown field; allowed: value, source, note",
        )


def _clusters(data: dict, src: str, sources: dict) -> list[dict]:
    clusters = []
    for i, c in enumerate(data["cpu_clusters"] or []):
        f = f"cpu_clusters[{i}]"
        if not isinstance(c, dict) or not {"core", "count", "max_ghz", "flop_per_cycle"} <= set(c):
            raise ConfigError(src, f, "needs core, count, max_ghz, flop_per_cycle")
        clusters.append(
            {
                "core": str(c["core"]),
                "count": _num(c["count"], src, f + ".count", sources),
                "max_ghz": _num(c["max_ghz"], src, f + ".max_ghz", sources),
                "flop_per_cycle": _num(c["flop_per_cycle"], src, f + ".flop_per_cycle", sources),
            }
        )
    return clusters


def _accelerators(data: dict, src: str, sources: dict) -> list[dict]:
    accs = []
    for i, a in enumerate(data.get("accelerators") or []):
        f = f"accelerators[{i}]"
        if not isinstance(a, dict) or a.get("kind") not in UNITS:
            raise ConfigError(src, f + ".kind", f"must be one of {', '.join(UNITS)}")
        accs.append(
            {
                "kind": a["kind"],
                "name": str(a.get("name", "")),
                "peak": _num(a.get("peak"), src, f + ".peak", sources, required=False),
                "peak_unit": str(a.get("peak_unit", "")),
            }
        )
    return accs


def _runtime(rname: str, r, src: str, sources: dict) -> RuntimeProfile:
    f = f"runtimes.{rname}"
    if not isinstance(r, dict):
        raise ConfigError(src, f, "must be a mapping")
    extra = set(r) - RUNTIME_FIELDS
    if extra:
        raise ConfigError(
            src, f"{f}.{sorted(extra)[0]}", f"unknown field; allowed: {', '.join(sorted(RUNTIME_FIELDS))}"
        )
    if r.get("unit") not in UNITS:
        raise ConfigError(src, f + ".unit", f"must be one of {', '.join(UNITS)}")
    if r.get("family") is not None:
        from .families import family_names

        if r["family"] not in family_names():
            raise ConfigError(src, f + ".family", f"unknown runtime family; known: {', '.join(family_names())}")
    precs = {}
    for p, pv in (r.get("precisions") or {}).items():
        pv = {} if pv is None else pv
        if p not in PRECISIONS:
            raise ConfigError(src, f"{f}.precisions.{p}", f"unknown precision; allowed: {', '.join(PRECISIONS)}")
        if not isinstance(pv, dict) or set(pv) - PREC_FIELDS:
            raise ConfigError(src, f"{f}.precisions.{p}", f"allowed fields: {', '.join(sorted(PREC_FIELDS))}")
        precs[p] = {k: _num(pv.get(k), src, f"{f}.precisions.{p}.{k}", sources, required=False) for k in PREC_FIELDS}
    if not precs:
        raise ConfigError(src, f + ".precisions", "list at least one precision")
    return RuntimeProfile(
        rname,
        r["unit"],
        r.get("family"),
        r.get("threads"),
        str(r.get("description", "")),
        precs,
        *(
            _num(r.get(k), src, f"{f}.{k}", sources, required=False)
            for k in (
                "dispatch_us",
                "token_overhead_ms",
                "runtime_overhead_mb",
                "cold_start_factor",
                "bandwidth_eff",
            )
        ),
    )


def load_profile_file(path: str | Path) -> Profile:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "(file)", "profile file does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "(yaml)", f"not valid YAML: {e}") from None
    p = parse_profile(data, str(path))
    return p


def profile_dirs() -> list[Path]:
    extra = [Path(d) for d in os.environ.get("PROJDEPLOY_PROFILES", "").split(os.pathsep) if d]
    return [PACKAGE_DIR, *extra]


def profile_files() -> dict[str, Path]:
    """name (file stem) -> path, shipped first; a user directory may override a shipped name."""
    out = {}
    for d in profile_dirs():
        for p in sorted(Path(d).glob("*.yaml")):
            if not p.name.startswith("_"):
                out[p.stem] = p
    return out


def profile_names() -> list[str]:
    return sorted(profile_files())


@functools.lru_cache(maxsize=64)
def _cached(path: str, mtime: float) -> Profile:
    return load_profile_file(path)


def get_profile(name_or_path: str | Path) -> Profile:
    """A profile by shipped/user name or by YAML path; unknown names list the known ones."""
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")) or os.sep in s:
        p = Path(s)
    else:
        files = profile_files()
        if s not in files:
            raise UnknownNameError("profile", s, files)
        p = files[s]
    if not p.is_file():
        raise ConfigError(str(p), "(file)", "profile file does not exist")
    prof = _cached(str(p.resolve()), p.stat().st_mtime)
    if prof.name != p.stem and not (s.endswith((".yaml", ".yml")) or os.sep in s):
        raise ConfigError(str(p), "name", f"is {prof.name!r} but the file is named {p.stem!r}")
    return prof


def all_profiles() -> list[Profile]:
    return [get_profile(n) for n in profile_names()]
