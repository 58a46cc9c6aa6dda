"""SDK generator: a Swift package, a Kotlin library or a TypeScript package around an artifact.

    projdeploy sdk --artifact dist/digits-cls-onnx --target web --out sample_apps/web/src/sdk/digits_cls

Python API::

    from projdeploy.sdk import generate, check_generated
    generate(artifact_dir, "web" | "ios" | "android", out_dir) -> Path
    check_generated(out_dir) -> list of files that differ from a fresh rendering

The artifact is verified first (every file's sha256 against its manifest);
a tampered artifact, or a format the target cannot run (web: onnx; ios:
executorch or coreml; android: executorch), fails before anything is
written. The output directory is replaced atomically.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ConfigError, DataError
from .render import MARKER, render, versions
from .selftest import check_bundle, write_self_test
from .spec import LM_VECTORS, RESOURCE_FILES, SELF_TEST_FILE, SPEC_FILE, TARGET_FORMATS, build_spec

TARGETS = tuple(TARGET_FORMATS)


def resource_dir(spec: dict) -> str:
    """Where a target bundles the artifact's files inside the generated package."""
    return {
        "web": "assets",
        "ios": f"Sources/{spec['ids']['type']}/Resources",
        "android": f"src/main/assets/{spec['ids']['snake']}",
    }[spec["target"]]


def generated_files(spec: dict) -> dict[str, str]:
    """Every generated text file (code + the spec itself), keyed by relative path."""
    files = render(spec)
    files[SPEC_FILE] = json.dumps(spec, indent=1, sort_keys=True) + "\n"
    return files


def _verify(artifact: Path) -> dict:
    from exporters.base import verify_manifest

    if not artifact.is_dir():
        raise DataError(f"{artifact}: artifact directory does not exist")
    manifest = verify_manifest(artifact)
    files = manifest.get("files") or {}
    if "lm" in (manifest.get("model") or {}):  # an exporters/llm program: its tokenizer is checked by build_spec
        return manifest
    for name in RESOURCE_FILES[1:2]:  # the tokenizer; test vectors are optional (no selfTest without them)
        if name not in files:
            raise ConfigError(
                str(artifact / "manifest.json"),
                "files",
                f"{name!r} is not listed; the SDK bundles it (the tokenizer)",
            )
    return manifest


def generate(artifact_dir: str | Path, target: str, out_dir: str | Path) -> Path:
    """Write the SDK package for ``target`` around the artifact into ``out_dir`` (replaced)."""
    from ..fsutil import atomic_dir
    from ..layout import contained

    artifact = Path(artifact_dir)
    if target not in TARGETS:
        raise ConfigError("--target", "target", f"{target!r}; known targets: {list(TARGETS)}")
    manifest = _verify(artifact)
    spec = build_spec(artifact, target, manifest)
    files = generated_files(spec)
    with atomic_dir(out_dir) as tmp:
        for rel, text in files.items():
            p = contained(tmp / rel, tmp)  # file names derive from the task name: never outside the package
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        res = tmp / resource_dir(spec)
        res.mkdir(parents=True, exist_ok=True)
        for name in spec["resources"]:
            src = artifact / name
            if name == SELF_TEST_FILE:  # derived from the LM program's binary test vectors
                write_self_test(artifact / LM_VECTORS, res / name)
            elif src.is_dir():  # .mlpackage
                shutil.copytree(src, res / name)
            else:
                shutil.copyfile(src, res / name)
        _check_copied(res, manifest, spec)
        if spec.get("lm"):
            check_bundle(res, spec, str(artifact / "manifest.json"))
    return Path(out_dir)


def _check_copied(res: Path, manifest: dict, spec: dict) -> None:
    from ..fsutil import sha256_file

    bundled = set(spec["resources"])
    for rel, rec in (manifest.get("files") or {}).items():
        if rel in bundled or rel.split("/", 1)[0] in bundled:
            if sha256_file(res / rel) != rec["sha256"]:
                raise DataError(f"{res / rel}: copy does not match its sha256 in the manifest")


def check_generated(out_dir: str | Path) -> list[str]:
    """Files of a generated package that differ from a fresh rendering of its recorded spec.

    Returns a list of 'path: reason' strings (empty when up to date). Resources are not
    compared (they are the artifact's files, checked against its manifest).
    """
    out = Path(out_dir)
    spec_path = out / SPEC_FILE
    if not spec_path.is_file():
        raise DataError(f"{out}: not a generated SDK (no {SPEC_FILE})")
    spec = json.loads(spec_path.read_text())
    expected = generated_files(spec)
    problems = []
    for rel, text in sorted(expected.items()):
        p = out / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif p.read_text() != text:
            problems.append(f"{rel}: differs from the generator's output")
    res = resource_dir(spec)
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and rel not in expected and not rel.startswith(res + "/") and MARKER in _head(p):
            problems.append(f"{rel}: generated file no longer produced by the generator")
    return problems


def _head(p: Path) -> str:
    try:
        return p.read_text(errors="replace")[:400]
    except OSError:
        return ""


__all__ = ["generate", "check_generated", "generated_files", "resource_dir", "TARGETS", "versions"]
