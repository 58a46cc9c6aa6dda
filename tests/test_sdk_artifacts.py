"""SDK generator on real exported artifacts: iOS/Android consistency with the manifest, bad input.

    .venv/bin/python -m pytest tests/test_sdk_artifacts.py -x -q

No Swift or Android toolchain here: the generated Swift and Kotlin are checked against the
artifact's manifest (program I/O names, shapes, dtypes; resource names and sha256) and parsed
with tree-sitter. The Python reference's generation loop over the ExecuTorch LM program (cache
inside, what Swift/Kotlin implement) is checked against the ONNX decoder with past (web).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from projdeploy.fsutil import sha256_file
from projdeploy.sdk import generate, resource_dir
from projdeploy.sdk.spec import SPEC_FILE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, tiny_cls_checkpoint, tiny_lm_checkpoint):
    import torch

    from exporters.api import export_checkpoint

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("arts")
    return {
        "cls-pte": export_checkpoint(
            tiny_cls_checkpoint, "executorch", "xnnpack-fp32", "digits-cls", tmp / "a", max_rows=8
        ).path,
        "lm-pte": export_checkpoint(
            tiny_lm_checkpoint, "executorch", "xnnpack-fp32", "digits:0-4", tmp / "b", max_rows=4
        ).path,
        "lm-onnx": export_checkpoint(tiny_lm_checkpoint, "onnx", "fp32", "digits:0-4", tmp / "c", max_rows=4).path,
        "lm-coreml": export_checkpoint(tiny_lm_checkpoint, "coreml", "fp16", "digits:0-4", tmp / "d", max_rows=4).path,
    }


SWIFT_T = re.compile(r'TensorSpec\(name: "([^"]+)", shape: \[([-0-9, ]*)\], dtype: \.(\w+)\)')
KOTLIN_T = re.compile(r'TensorSpec\("([^"]+)", longArrayOf\(([-0-9, ]*)\), Dtype\.(\w+)\)')


def _programs_in_code(text: str, pattern: re.Pattern, prog_re: re.Pattern) -> dict:
    """{program: [(name, shape, dtype), ...]} in declaration order (inputs then outputs)."""
    out, starts = {}, [(m.start(), m.group(1)) for m in prog_re.finditer(text)]
    for i, (pos, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        out[name] = [
            (n, [int(x) for x in s.split(",") if x.strip()], d.lower()) for n, s, d in pattern.findall(text[pos:end])
        ]
    return out


def _expected(manifest: dict) -> dict:
    return {
        p: [
            (t["name"], [d if isinstance(d, int) else -1 for d in t["shape"]], t["dtype"])
            for t in io["inputs"] + io["outputs"]
        ]
        for p, io in manifest["programs"].items()
    }


@pytest.mark.parametrize("target", ["ios", "android"])
@pytest.mark.parametrize("which", ["cls-pte", "lm-pte"])
def test_mobile_code_matches_the_manifest(artifacts, tmp_path, target, which):
    from tests.test_sdk import parse_errors

    art = artifacts[which]
    manifest = json.loads((art / "manifest.json").read_text())
    out = generate(art, target, tmp_path / "pkg")
    spec = json.loads((out / SPEC_FILE).read_text())
    typ = spec["ids"]["type"]
    assert re.match(r"^[A-Z][A-Za-z0-9]*$", typ) and re.match(r"^[a-z][a-z0-9_]*$", spec["ids"]["snake"])
    if target == "ios":
        code = (out / "Sources" / typ / f"{typ}.swift").read_text()
        progs = _programs_in_code(code, SWIFT_T, re.compile(r'"(\w+)": ProgramSpec\('))
        copies = re.findall(r'\.copy\("Resources/([^"]+)"\)', (out / "Package.swift").read_text())
        listed = re.search(r"static let resources = \[(.*?)\]", code).group(1)
        lang = "swift"
    else:
        pkg = out / "src" / "main" / "kotlin" / Path(*spec["ids"]["java_package"].split("."))
        code = (pkg / f"{typ}.kt").read_text()
        progs = _programs_in_code(code, KOTLIN_T, re.compile(r'"(\w+)" to ProgramSpec\('))
        copies = None
        listed = re.search(r"val RESOURCES(?:: List<String>)? = listOf\((.*?)\)", code).group(1)
        assert f"package {spec['ids']['java_package']}" in code
        lang = "kotlin"
    assert progs == _expected(manifest)
    names = re.findall(r'"([^"]+)"', listed)
    vectors = "projdeploy_selftest.json" if which == "lm-pte" else "test_vectors.json"  # LM: from the .npz
    assert names[0] == manifest["main_file"] and set(names) == {
        manifest["main_file"],
        "manifest.json",
        "projdeploy_tokenizer.json",
        vectors,
    }
    if copies is not None:
        assert copies == names
    res = out / resource_dir(spec)
    for name in names:
        assert (res / name).is_file()
        if name in manifest["files"]:
            assert sha256_file(res / name) == manifest["files"][name]["sha256"], name
    if which == "lm-pte":
        assert spec["lm_mode"] == "kv_in_program" and "forwardAt" in code and '"decode"' not in code
    for p in out.rglob("*"):
        if p.suffix in (".swift", ".kt", ".kts"):
            assert not parse_errors(lang, p.read_text()), p


def test_cache_inside_loop_matches_the_decoder_with_past_loop(artifacts):
    """The generation loop of the Swift/Kotlin SDKs (mirrored in reference.py) on the real ExecuTorch runtime
    against the web SDK's over the ONNX decoder with past: the same tokens."""
    from projdeploy.sdk.reference import Reference

    kv, full = Reference(artifacts["lm-pte"], "android"), Reference(artifacts["lm-onnx"], "web")
    assert kv.spec["lm_mode"] == "kv_in_program" and full.spec["lm_mode"] == "kv_io"
    bos = kv.tok["bos_id"]
    for opts in ({"max_new_tokens": 20}, {"max_new_tokens": 20, "temperature": 0.8, "top_k": 8, "seed": 5}):
        assert kv.generate_tokens([bos, 0, 0, 3], **opts) == full.generate_tokens([bos, 0, 0, 3], **opts)
    long = kv.generate_tokens([bos], max_new_tokens=80, stop_at_eos=False)  # past the 64-token window: restart
    assert len(long) == 80 and all(0 <= t < kv.spec["vocab_size"] for t in long)
    assert kv.self_test()["passed"] and full.self_test()["passed"]


def test_unfit_format_and_tampered_artifact_write_nothing(artifacts, tmp_path):
    import shutil

    from exporters.base import ManifestError
    from projdeploy.errors import ConfigError

    out = tmp_path / "out" / "pkg"
    with pytest.raises(ConfigError, match="does not fit target 'web'"):
        generate(artifacts["cls-pte"], "web", out)
    with pytest.raises(ConfigError, match="does not fit target 'android'"):
        generate(artifacts["lm-onnx"], "android", out)
    assert not (tmp_path / "out").exists()
    bad = tmp_path / "tampered"
    shutil.copytree(artifacts["cls-pte"], bad)
    data = bytearray((bad / "model.pte").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.pte").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256"):
        generate(bad, "ios", out)
    assert not (tmp_path / "out").exists()
    # an existing package is left untouched by a failed run
    generate(artifacts["cls-pte"], "ios", out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(ManifestError):
        generate(bad, "ios", out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in out.parent.iterdir()] == ["pkg"]


def test_cli_reports_bad_input_without_traceback(artifacts, tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    res = CliRunner().invoke(
        cli, ["sdk", "--artifact", str(artifacts["lm-onnx"]), "--target", "ios", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "does not fit target 'ios'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        cli, ["sdk", "--artifact", str(artifacts["cls-pte"]), "--target", "android", "--out", str(tmp_path / "y")]
    )
    assert res.exit_code == 0 and (tmp_path / "y" / SPEC_FILE).is_file()


def test_core_ml_lm_bundles_its_stateful_package_and_converts_fp16_at_the_boundary(artifacts, tmp_path):
    """A Core ML LM is one stateful .mlpackage (prefill + decode functions) with float16 outputs."""
    from projdeploy.sdk import generated_files
    from tests.test_sdk_swift import problems

    art = artifacts["lm-coreml"]
    manifest = json.loads((art / "manifest.json").read_text())
    out = generate(art, "ios", tmp_path / "pkg")
    spec = json.loads((out / SPEC_FILE).read_text())
    assert set(spec["program_files"]) == set(manifest["programs"])
    for f in spec["program_files"].values():
        assert f == manifest["main_file"] == "model.mlpackage" and (out / resource_dir(spec) / f).is_dir()
    dtypes = {t["dtype"] for io in spec["programs"].values() for t in io["outputs"]}
    assert "float16" in dtypes or dtypes <= {"float32"}, dtypes
    code = "\n".join(generated_files(spec).values())
    assert spec["lm_mode"] == "kv_state" and ".iOS(.v18)" in code  # model.lm kv_cache "state": MLState
    assert "CoreMLStatefulLM(url:" in code and 'functionName = "prefill"' in code and ".float16" in code
    assert problems(generated_files(spec)) == []
