"""Build targets as data: named combinations of export recipes, device profiles and an SDK.

    projdeploy build --task digits-cls --target ios

Shipped targets are ``projdeploy/targets/*.yaml``; a user target is the path of
a YAML file with the same fields. Unknown names fail with the known list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import load_yaml_mapping
from .errors import ConfigError, DataError, UnknownNameError
from .layout import safe_component

TARGET_DIR = Path(__file__).parent / "targets"
FIELDS = {"name", "description", "artifacts", "profiles", "sdk", "sdk_artifact"}
SDKS = ("ios", "android", "web", None)


@dataclass(frozen=True)
class ArtifactSpec:
    format: str
    recipe: str
    optional: bool = False  # skipped (and reported) where the backend is not available here

    @property
    def key(self) -> str:
        return f"{self.format}/{self.recipe}"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    artifacts: tuple[ArtifactSpec, ...]
    profiles: tuple[str, ...]
    sdk: str | None
    sdk_artifact: str | None
    source: str


def shipped_targets() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.yaml"))


def load_target(name_or_path: str) -> Target:
    p = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        if not p.is_file():
            raise DataError(f"target file {name_or_path!r} does not exist")
    else:
        p = TARGET_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise UnknownNameError("target", name_or_path, shipped_targets() + ["<file>.yaml"])
    src = str(p)
    d = load_yaml_mapping(p, FIELDS)
    for f in ("name", "artifacts", "profiles"):
        if f not in d:
            raise ConfigError(src, f, "required")
    safe_component(d["name"], src, "name")
    arts = []
    if not isinstance(d["artifacts"], list) or not d["artifacts"]:
        raise ConfigError(src, "artifacts", "a non-empty list of {format, recipe[, optional]}")
    for i, a in enumerate(d["artifacts"]):
        if not isinstance(a, dict) or not {"format", "recipe"} <= set(a) or set(a) - {"format", "recipe", "optional"}:
            raise ConfigError(src, f"artifacts[{i}]", "a mapping with format, recipe and optional")
        fmt = safe_component(a["format"], src, f"artifacts[{i}].format")
        recipe = safe_component(a["recipe"], src, f"artifacts[{i}].recipe")
        arts.append(ArtifactSpec(fmt, recipe, bool(a.get("optional", False))))
    if not isinstance(d["profiles"], list):
        raise ConfigError(src, "profiles", "a list of profile names")
    if d.get("sdk") not in SDKS:
        raise ConfigError(src, "sdk", f"got {d.get('sdk')!r}; allowed: ios, android, web, null")
    keys = [a.key for a in arts]
    if d.get("sdk") and d.get("sdk_artifact") not in keys:
        raise ConfigError(src, "sdk_artifact", f"must name one of the artifacts: {', '.join(keys)}")
    return Target(
        d["name"],
        str(d.get("description", "")),
        tuple(arts),
        tuple(map(str, d["profiles"])),
        d.get("sdk"),
        d.get("sdk_artifact"),
        src,
    )
