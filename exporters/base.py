"""Errors, the recipe base, the artifact record and its manifest.

    python -c "from exporters.base import Artifact; print(Artifact.read('out/cls-onnx'))"

The contract each format follows is :class:`exporters.format.Format`.
An artifact directory holds the model file(s), ``manifest.json`` and the
tokenizer/test vectors. ``manifest.json`` (schema ``projdeploy.manifest/1``)::

    {"schema": "projdeploy.manifest/1", "format": "onnx", "main_file": "model.onnx",
     "recipe": {"type": ..., "version": ..., ...fields},
     "files": {"model.onnx": {"sha256": ..., "size": ...}, ...},   # every other file
     "programs": {"forward": {"inputs": [{"name","shape","dtype"}], "outputs": [...]}},
     "model": {"task", "task_kind": "lm"|"cls", "modality", "config": {...HF config...},
               "labels": [...], "image_shape": [8, 8] | null, "tokenizer_file": ...},
     "tools": {"torch": "2.13.0+cpu", ...},
     "validation": {...measured parity / SQNR / metric figures..., "passed": true},
     "created_by": "projdeploy 0.1.0"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .config import Config

MANIFEST = "manifest.json"
SCHEMA = "projdeploy.manifest/1"


# --- errors ----------------------------------------------------------------------------
def _user_error_base():
    try:
        from projdeploy.errors import ProjdeployError

        return ProjdeployError
    except ImportError:  # exporters is usable without projdeploy
        return Exception


class ExportError(_user_error_base()):
    """Export failed; the message says why."""


class UnavailableError(ExportError):
    """The recipe's backend is not available on this machine."""


class ParityError(ExportError):
    """The artifact's outputs do not match the float model within the recipe's thresholds."""

    def __init__(self, message: str, figures: dict):
        self.figures = figures
        super().__init__(f"{message}: {json.dumps(figures, sort_keys=True, default=str)}")


class ManifestError(ExportError):
    """Manifest missing, malformed, or a file does not match its recorded sha256/size."""


# --- recipes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe(Config):
    """Base of every recipe: plain frozen data, serialised with its type and version."""

    name: str
    format: str
    version: int = 1
    description: str = ""


# --- tensors and artifacts -------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or strings for dynamic dims
    dtype: str  # "int64", "float32", ...

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        return cls(d["name"], tuple(d["shape"]), d["dtype"])


@dataclass(frozen=True)
class Artifact:
    """An artifact directory. ``Format.export`` returns one without ``model``/``files`` (no manifest
    yet); a finished artifact is read back from its manifest with :meth:`read`."""

    path: Path
    format: str
    recipe: Recipe
    main_file: str
    programs: dict[str, dict[str, list[TensorSpec]]]
    model: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    @property
    def main_path(self) -> Path:
        return Path(self.path) / self.main_file

    @property
    def size_bytes(self) -> int:
        """Bytes of the main file (or of every file of the main package directory)."""
        mf = self.main_file
        return sum(r["size"] for f, r in self.files.items() if f == mf or f.startswith(mf + "/"))

    @classmethod
    def read(cls, directory: str | Path, verify: bool = False) -> Artifact:
        """The artifact described by ``directory/manifest.json`` (``verify``: check every file's sha256)."""
        from .recipes import recipe_from_dict

        m = verify_manifest(directory) if verify else read_manifest(directory)
        progs = {
            k: {io: [TensorSpec.from_dict(t) for t in v.get(io, [])] for io in ("inputs", "outputs")}
            for k, v in m["programs"].items()
        }
        return cls(
            path=Path(directory),
            format=m["format"],
            recipe=recipe_from_dict(m["recipe"]),
            main_file=m["main_file"],
            programs=progs,
            model=m.get("model", {}),
            validation=m.get("validation", {}),
            files=m.get("files", {}),
        )

    def manifest(self) -> dict:
        return read_manifest(self.path)


class Runner(Protocol):
    def run(self, program: str, inputs: list) -> list: ...


def tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "projdeploy",
        "torch",
        "executorch",
        "coremltools",
        "onnx",
        "onnxruntime",
        "onnxscript",
        "optimum",
        "transformers",
        "torchao",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def write_manifest(
    directory: str | Path, *, format: str, recipe: Recipe, main_file: str, programs: dict, model: dict, validation: dict
) -> dict:
    """Hash every file in ``directory`` (except the manifest) and write ``manifest.json``."""
    from projdeploy.fsutil import atomic_write_json, sha256_file

    directory = Path(directory)
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(directory).as_posix()] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    progs = {
        k: {
            io: [t.to_dict() if isinstance(t, TensorSpec) else t for t in v.get(io, [])] for io in ("inputs", "outputs")
        }
        for k, v in programs.items()
    }
    m = {
        "schema": SCHEMA,
        "format": format,
        "main_file": main_file,
        "recipe": recipe.to_dict(),
        "files": files,
        "programs": progs,
        "model": model,
        "tools": tool_versions(),
        "validation": validation,
        "created_by": f"projdeploy {tool_versions().get('projdeploy', '?')}",
    }
    atomic_write_json(directory / MANIFEST, m)
    return m


def read_manifest(directory: str | Path) -> dict:
    p = Path(directory) / MANIFEST
    if not p.is_file():
        raise ManifestError(f"{directory}: not an artifact directory (no {MANIFEST})")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ManifestError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(m, dict):
        raise ManifestError(f"{p}: must be a JSON object, got {type(m).__name__}")
    if m.get("schema") != SCHEMA:
        raise ManifestError(f"{p}: field 'schema' is {m.get('schema')!r}; supported: {SCHEMA}")
    _check_paths(m, p)
    return m


def _check_paths(m: dict, p: Path) -> None:
    """Every path a manifest names stays inside the artifact directory (projdeploy.layout.inside_manifest)."""
    from projdeploy.layout import inside_manifest

    files = m.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(r, dict) and {"sha256", "size"} <= set(r) for r in files.values()
    ):
        raise ManifestError(f"{p}: field 'files' must map relative paths to {{sha256, size}}")
    inside_manifest(p.parent, m.get("main_file"), str(p), "main_file")
    for rel in files:
        inside_manifest(p.parent, rel, str(p), f"files[{rel!r}]")


def verify_manifest(directory: str | Path) -> dict:
    """Read the manifest and check every file's size and sha256; raise on any mismatch."""
    from projdeploy.fsutil import sha256_file

    directory = Path(directory)
    m = read_manifest(directory)
    for rel, rec in m["files"].items():
        p = directory / rel
        if not p.is_file():
            raise ManifestError(f"{directory}: file {rel!r} listed in the manifest is missing")
        if p.stat().st_size != rec["size"] or sha256_file(p) != rec["sha256"]:
            raise ManifestError(
                f"{directory}: file {rel!r} does not match its sha256 in the manifest (tampered or corrupted)"
            )
    return m
