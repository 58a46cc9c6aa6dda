"""One API on three platforms: every generated package exposes exactly projdeploy.sdk.api's methods.

    .venv/bin/python -m pytest tests/test_sdk_api.py -q

For each committed package (and each task kind), the public methods of the task's type are read from
the generated Swift, Kotlin and TypeScript and compared with :func:`projdeploy.sdk.api.methods`: the
same names, the same result type names, each in its platform's idiom (Swift ``async throws`` and an
``AsyncThrowingStream``, Kotlin ``suspend`` and ``Flow<String>``, TypeScript ``Promise`` and an async
iterator) and nothing else public.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from projdeploy.sdk import generated_files
from projdeploy.sdk.api import methods

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "sample_apps").rglob("projdeploy_sdk.json") if "node_modules" not in p.parts)


def _main_source(files: dict[str, str], spec: dict) -> str:
    t = spec["ids"]["type"]
    suffix = {"ios": f"/{t}.swift", "android": f"/{t}.kt", "web": "src/index.ts"}[spec["target"]]
    return next(v for k, v in files.items() if k.endswith(suffix))


PATTERNS = {
    # name -> (signature text)
    "ios": re.compile(r"^  public (?:static |nonisolated )?func (\w+)(\(.*)$", re.M),
    "android": re.compile(r"^ {4,8}(?:public (?:suspend )?|override )fun (\w+)(\(.*)$", re.M),
    "web": re.compile(r"^  (?:static )?(?:async )?(\w+)(\(.*\): .*) \{$", re.M),
}
IDIOM = {
    "ios": {"stream": "AsyncThrowingStream<String, Error>", "call": "async throws"},
    "android": {"stream": "Flow<String>", "call": "suspend"},
    "web": {"stream": "AsyncIterableIterator<string>", "call": "Promise<"},
}


def public_methods(spec: dict) -> dict[str, str]:
    src = _main_source(generated_files(spec), spec)
    if spec["target"] == "web":  # the exported class, not the module's private helpers
        src = src[src.index(f"export class {spec['ids']['type']} {{") :]
    found = {}
    for m in PATTERNS[spec["target"]].finditer(src):
        line = src[m.start() : src.index("\n", m.start())]
        if m.group(1) in ("constructor", "call", "if", "for", "while", "switch"):
            continue
        found[m.group(1)] = line
    return found


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.parent.relative_to(ROOT / "sample_apps").as_posix())
def test_every_package_exposes_exactly_the_api(path):
    spec = json.loads(path.read_text())
    want = methods(spec["kind"], spec["modality"])
    got = public_methods(spec)
    extra = set(got) - {m.name for m in want}
    assert not extra, f"public methods outside the API: {sorted(extra)}"
    idiom = IDIOM[spec["target"]]
    for m in want:
        assert m.name in got, f"{m.name} missing"
        line = got[m.name]
        if m.streams:
            assert idiom["stream"] in line, line
        elif m.name not in ("close", "load") and not (spec["target"] == "android" and m.name == "close"):
            assert idiom["call"] in line or (spec["target"] == "android" and "suspend" in line), line
        if m.returns in ("Classification", "Completion", "SelfTestReport"):
            assert m.returns in line, line


def test_the_three_platforms_agree_for_each_task():
    by_task: dict[str, dict[str, set[str]]] = {}
    for path in SPECS:
        spec = json.loads(path.read_text())
        by_task.setdefault(spec["task"], {})[spec["target"]] = set(public_methods(spec))
    for task, targets in by_task.items():
        assert len(targets) == 3, task
        assert targets["ios"] == targets["android"] == targets["web"], (task, targets)


SAMPLE_SOURCES = [
    *sorted((ROOT / "sample_apps" / "ios" / "ProjdeploySample").glob("*View.swift")),
    *sorted((ROOT / "sample_apps" / "android" / "app" / "src").rglob("MainActivity.kt")),
    ROOT / "sample_apps" / "web" / "src" / "main.ts",
    ROOT / "sample_apps" / "web" / "e2e" / "run.mjs",
]


@pytest.mark.parametrize("path", SAMPLE_SOURCES, ids=lambda p: p.name)
def test_sample_apps_call_only_the_api(path):
    from projdeploy.sdk.api import METHODS

    text = path.read_text()
    receivers = r"(?:DigitsCls|Pycode|model|digits|pycode|s\.digits|s\.pycode|state\.digits!?)"
    called = set(re.findall(rf"(?<!out\.)\b{receivers}\??\.(\w+)\(", text))
    assert called, path
    allowed = {m.name for m in METHODS} | {"also"}
    assert called <= allowed, sorted(called - allowed)
