"""Compile checks of the generated SDKs with the real compilers: kotlinc -Werror, tsc strict (NodeNext).

    .venv/bin/python -m pytest tests/test_sdk_compile.py -q

Kotlin: every committed Android package and the sample app's Kotlin compile with the npm package
``kotlin-compiler`` (pinned in sample_apps/android/compile-check/package-lock.json) and Debian's JDK
against signature-only stubs of the executorch-android API of the pinned release and of the few
``android.*`` / ``org.json`` classes used (sample_apps/android/compile-check/stubs, each citing its
source); kotlinx-coroutines is the real jar shipped with the compiler. TypeScript: every committed
web package type-checks as a consumer would compile it (strict, ``module``/``moduleResolution``
NodeNext, ``noUncheckedIndexedAccess``) against the real onnxruntime-web typings.
Setup: ``bash sample_apps/android/compile-check/setup.sh`` and ``bash sample_apps/web/setup.sh``
(``make test`` runs both).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANDROID = ROOT / "sample_apps" / "android"
CHECK = ANDROID / "compile-check"
KOTLIN_HOME = CHECK / "node_modules" / "kotlin-compiler"
WEB = ROOT / "sample_apps" / "web"
TSC = WEB / "node_modules" / "typescript" / "bin" / "tsc"

CONSUMER_TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "lib": ["ES2022", "DOM"],
        "strict": True,
        "noUncheckedIndexedAccess": True,
        "noImplicitOverride": True,
        "noEmit": True,
        "skipLibCheck": True,
        "types": [],
    }
}


def kotlinc() -> Path:
    exe = KOTLIN_HOME / "bin" / "kotlinc"
    if not exe.is_file() or shutil.which("java") is None:
        pytest.skip("kotlinc or java missing: run bash sample_apps/android/compile-check/setup.sh")
    return exe


def kotlin_classpath() -> str:
    return str(KOTLIN_HOME / "lib" / "kotlinx-coroutines-core-jvm.jar")


def compile_kotlin(sources: list[Path], out: Path, extra_cp: list[Path] = ()) -> subprocess.CompletedProcess:
    """kotlinc -Werror over the stubs plus ``sources`` (directories or files) into ``out`` (a .jar)."""
    cp = ":".join([kotlin_classpath(), *map(str, extra_cp)])
    stubs = [CHECK / "stubs" / "executorch", CHECK / "stubs" / "android"]
    cmd = [str(kotlinc()), "-Werror", "-jvm-target", "17", "-cp", cp, "-d", str(out), *map(str, stubs + sources)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def android_sdks() -> list[Path]:
    return sorted(p.parent for p in ANDROID.glob("*/projdeploy_sdk.json"))


def extra_package(tmp_path: Path, target: str, which: str = "wordpiece") -> Path:
    """A generated package for what no committed sample covers: a WordPiece (BERT) text classifier, or an
    exporters/llm LM program (model.lm) with a BPE tokenizer: the KV cache inside, with a projdeploy or the
    LM's own tokenizer.json, or (web) a decoder with past."""
    from test_sdk import lm_program_artifact, wordpiece_text_classifier

    from projdeploy.sdk import generated_files
    from projdeploy.sdk.spec import build_spec

    make = {
        "wordpiece": wordpiece_text_classifier,
        "lm-program": lm_program_artifact,
        "lm-hf": functools.partial(lm_program_artifact, hf=True),  # the LM's own tokenizer.json
        "lm-io": functools.partial(lm_program_artifact, protocol="io", hf=True),  # decoder with past (web)
    }[which]
    d, manifest = make(tmp_path, "onnx" if target == "web" else "executorch")
    out = tmp_path / f"pkg-{target}-{which}"
    for rel, text in generated_files(build_spec(d, target, manifest)).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out


@pytest.mark.slow
def test_generated_kotlin_and_the_android_sample_compile_with_werror(tmp_path):
    extra = [extra_package(tmp_path, "android", w) / "src" for w in ("wordpiece", "lm-program", "lm-hf")]
    sources = [d / "src" for d in android_sdks()] + [ANDROID / "app" / "src", *extra]
    assert len(sources) >= 3
    res = compile_kotlin(sources, tmp_path / "out.jar")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_kotlin_check_catches_a_wrong_executorch_call(tmp_path):
    """The stubs are strict: a call the real API does not have fails to compile."""
    src = tmp_path / "Bad.kt"
    src.write_text(
        "import org.pytorch.executorch.Module\n"
        'fun f(m: Module) { m.execute("forward", listOf()) }\n'  # execute takes vararg EValue, not a list
    )
    res = compile_kotlin([src], tmp_path / "bad.jar")
    assert res.returncode != 0 and "Bad.kt" in (res.stdout + res.stderr)


def tsc_check(files: list[Path], tmp_path: Path) -> subprocess.CompletedProcess:
    if not TSC.is_file() or shutil.which("node") is None:
        pytest.skip("typescript missing: run bash sample_apps/web/setup.sh")
    cfg = {**CONSUMER_TSCONFIG, "files": [str(f) for f in files]}
    # tsc resolves onnxruntime-web from the files' directories upward (sample_apps/web/node_modules).
    (tmp_path / "tsconfig.json").write_text(json.dumps(cfg))
    return subprocess.run(
        ["node", str(TSC), "-p", str(tmp_path / "tsconfig.json")], capture_output=True, text=True, timeout=300
    )


def web_sdks() -> list[Path]:
    return sorted(p.parent for p in (WEB / "src" / "sdk").glob("*/projdeploy_sdk.json"))


def test_generated_typescript_type_checks_as_a_strict_nodenext_consumer(tmp_path):
    files = [f for d in web_sdks() for f in sorted((d / "src").glob("*.ts"))]
    assert len(files) >= 4
    res = tsc_check(files, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("which", ["wordpiece", "lm-program", "lm-io"])
def test_packages_no_sample_covers_type_check(tmp_path, which):
    pkg = extra_package(tmp_path, "web", which)
    (tmp_path / "node_modules").symlink_to(WEB / "node_modules")  # tsc resolves onnxruntime-web upwards
    (tmp_path / "cfg").mkdir()
    res = tsc_check(sorted((pkg / "src").glob("*.ts")), tmp_path / "cfg")
    assert res.returncode == 0, res.stdout + res.stderr


def test_tsc_check_catches_an_unchecked_index(tmp_path):
    bad = tmp_path / "bad.ts"
    bad.write_text("export function f(xs: number[]): number { return xs[0] + 1; }\n")
    res = tsc_check([bad], tmp_path)
    assert res.returncode != 0 and "TS2532" in res.stdout
