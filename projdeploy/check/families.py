"""Runtime families: the fitted efficiencies one runtime shows on every device (``profiles/_runtimes.yaml``).

    python -c "from projdeploy.check.families import get_family; print(get_family('qnn-htp').class_eff)"

A device profile names the family of each runtime (``runtimes.<name>.family``); the device itself
supplies the hardware (peak per precision of the compute unit, memory bandwidth, all with sources).
A family holds what is fitted on published measurements by ``bench/estimator.py``: the compute
efficiency per operator class, a per-precision factor on the unit's peak, the bandwidth efficiency, the
per-operator dispatch overhead, a fixed per-call overhead and the memory overhead of the runtime. A
device may override any of these in its own runtime entry. Every number carries a source id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, UnknownNameError
from .profiles import PACKAGE_DIR, PRECISIONS, UNITS, Number, _num

SCHEMA = "projdeploy.runtimes/1"
FILE = PACKAGE_DIR / "_runtimes.yaml"
OP_CLASSES = ("matmul", "attention", "conv", "dwconv", "elementwise", "data")
SCALARS = (
    "bandwidth_eff",
    "act_dram_share",
    "onchip_mb",
    "dispatch_us",
    "fixed_ms",
    "runtime_overhead_mb",
    "act_arena_factor",
    "cold_start_factor",
)
FIELDS = {"unit", "description", "data", "class_eff", "precision_eff", "fit", *SCALARS}


@dataclass(frozen=True)
class Family:
    name: str
    unit: str
    description: str
    data: str  # which published rows the fit used
    class_eff: dict  # op class -> Number
    precision_eff: dict  # precision -> Number (factor on the unit's resolved peak)
    scalars: dict  # SCALARS name -> Number
    fit: dict  # fit record: rows, models, residual (informational)

    def get(self, name: str) -> Number:
        return self.scalars.get(name) or Number(None, None, "not fitted")


def parse_families(data: dict, src: str) -> dict:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ConfigError(src, "schema", f"must be {SCHEMA}")
    sources = data.get("sources") or {}
    out = {}
    for name, f in (data.get("families") or {}).items():
        fld = f"families.{name}"
        if not isinstance(f, dict) or set(f) - FIELDS:
            raise ConfigError(src, fld, f"allowed fields: {', '.join(sorted(FIELDS))}")
        if f.get("unit") not in UNITS:
            raise ConfigError(src, fld + ".unit", f"must be one of {', '.join(UNITS)}")
        ce = f.get("class_eff") or {}
        if set(ce) - set(OP_CLASSES):
            raise ConfigError(src, fld + ".class_eff", f"operator classes: {', '.join(OP_CLASSES)}")
        pe = f.get("precision_eff") or {}
        if set(pe) - set(PRECISIONS):
            raise ConfigError(src, fld + ".precision_eff", f"precisions: {', '.join(PRECISIONS)}")
        out[name] = Family(
            name,
            f["unit"],
            str(f.get("description", "")),
            str(f.get("data", "")),
            {k: _num(v, src, f"{fld}.class_eff.{k}", sources) for k, v in ce.items()},
            {k: _num(v, src, f"{fld}.precision_eff.{k}", sources) for k, v in pe.items()},
            {k: _num(f.get(k), src, f"{fld}.{k}", sources, required=False) for k in SCALARS},
            dict(f.get("fit") or {}),
        )
    return out


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[dict, dict]:
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    return parse_families(data, path), dict(data.get("sources") or {})


def families() -> dict:
    return _load(str(FILE), FILE.stat().st_mtime)[0]


def family_sources() -> dict:
    return _load(str(FILE), FILE.stat().st_mtime)[1]


def family_names() -> list[str]:
    return sorted(families())


def get_family(name: str) -> Family:
    fams = families()
    if name not in fams:
        raise UnknownNameError("runtime family", name, sorted(fams))
    return fams[name]
