"""SDKs for exporters/llm LM programs: model.lm read and checked, protocols, the LM's tokenizer.json, bundle budget.

    .venv/bin/python -m pytest tests/test_sdk_lm.py -q

Fast tests use manifests shaped like exporters/llm's (tests/test_sdk.py::lm_program_artifact); the slow ones
export a tiny transformers Llama with its own tokenizer.json (tests/tiny_bpe_llama.py) through
exporters.llm (ONNX decoder with past; ExecuTorch with the cache inside), generate the packages and measure
what they bundle besides the program against the budget (max(1 MB, 1% of the model)).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from test_sdk import lm_program_artifact

from projdeploy.errors import ConfigError
from projdeploy.sdk import generated_files
from projdeploy.sdk.spec import build_spec


@pytest.mark.parametrize(
    "change,field",
    [
        ({"kv_cache": "paged"}, "model.lm.kv_cache"),
        ({"max_seq_len": "64); exit(1)"}, "model.lm.max_seq_len"),
        ({"max_seq_len": 1}, "model.lm.max_seq_len"),
        ({"program": "decode"}, "model.lm.program"),
        ({"eos_ids": "2"}, "model.lm.eos_ids"),
        ({"eos_ids": [True]}, "model.lm.eos_ids"),
        ({"prompt_len": {"max": 64}}, "model.lm.max"),
        ({"bos_id": -1}, "model.lm.bos_id"),
    ],
)
def test_a_malformed_model_lm_names_the_manifest_and_the_field(tmp_path, change, field):
    d, manifest = lm_program_artifact(tmp_path, "executorch")
    manifest["model"]["lm"].update(change)
    with pytest.raises(ConfigError) as e:
        build_spec(d, "android", manifest)
    assert str(d / "manifest.json") in str(e.value) and field in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "kv_io,why",
    [
        (None, "kv_io"),
        ([["past_key_values.0.key", "present.9.key"]], "kv_io[0]"),
        ([["input_ids", "logits", "x"]], "kv_io[0]"),
    ],
)
def test_a_decoder_with_past_needs_its_past_present_pairs(tmp_path, kv_io, why):
    d, manifest = lm_program_artifact(tmp_path, "onnx", "io", hf=True)
    manifest["model"]["lm"]["kv_io"] = kv_io
    with pytest.raises(ConfigError, match=re.escape(f"model.lm.{why}")):
        build_spec(d, "web", manifest)


def test_model_lm_that_is_not_an_object_is_refused(tmp_path):
    d, manifest = lm_program_artifact(tmp_path, "executorch")
    manifest["model"]["lm"] = ["in_program"]
    with pytest.raises(ConfigError, match="model.lm"):
        build_spec(d, "ios", manifest)


def test_the_web_package_of_a_decoder_with_past_feeds_present_back_as_past(tmp_path):
    d, manifest = lm_program_artifact(tmp_path, "onnx", "io", hf=True)
    spec = build_spec(d, "web", manifest)
    assert spec["lm_mode"] == "kv_io" and spec["lm"]["kv_io"][0] == ["past_key_values.0.key", "present.0.key"]
    assert spec["resources"] == ["model.onnx", "manifest.json", "tokenizer.json", "projdeploy_selftest.json"]
    engine = generated_files(spec)["src/engine.ts"]
    assert "stepWithPast" in engine and "cursor.next(next)" in engine
    assert "SEQ_LEN - ctx.length" not in engine  # no padded full-window forward anywhere in the package


def test_the_lm_tokenizer_json_is_used_with_its_post_processor_prefix(tmp_path):
    d, manifest = lm_program_artifact(tmp_path, "executorch", hf=True)
    tok = json.loads((d / "tokenizer.json").read_text())
    bos = manifest["model"]["lm"]["bos_id"]
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}},
    }
    (d / "tokenizer.json").write_text(json.dumps(tok))
    for target in ("android", "ios"):
        spec = build_spec(d, target, manifest)
        assert spec["prompt_prefix"] == [bos] and spec["lm"]["tokenizer_file"] == "tokenizer.json"
        assert spec["tokenizer"]["type"] == "hf" and spec["text_engine"] == "bpe"
        code = "\n".join(generated_files(spec).values())
        assert '"tokenizer.json"' in code and "hf_tokenizer" not in code.split("tokenizer.json")[1][:200]


@pytest.mark.parametrize("target", ["ios", "android"])
def test_the_lm_tokenizer_json_package_conforms(tmp_path, target):
    from test_sdk import parse_errors
    from test_sdk_swift import problems

    d, manifest = lm_program_artifact(tmp_path, "executorch", hf=True)
    files = generated_files(build_spec(d, target, manifest))
    lang = {"ios": "swift", "android": "kotlin"}[target]
    for k, v in files.items():
        if k.endswith((".swift", ".kt")):
            assert not parse_errors(lang, v), k
    if target == "ios":
        assert problems(files) == []


def test_a_core_ml_stateful_lm_gets_a_swift_package_over_mlstate(tmp_path):
    """model.lm kv_cache 'state' (exporters/llm's Core ML program: one multifunction package): the Swift package
    loads the prefill and decode functions of the one bundled package and shares an MLState between them."""
    from test_sdk import parse_errors
    from test_sdk_swift import problems

    d, manifest = lm_program_artifact(tmp_path, "coreml", "state", hf=True)
    spec = build_spec(d, "ios", manifest)
    assert spec["lm_mode"] == "kv_state" and spec["program_files"] == {
        "decode": "model.mlpackage",
        "prefill": "model.mlpackage",
    }
    assert spec["resources"] == ["model.mlpackage", "manifest.json", "tokenizer.json", "projdeploy_selftest.json"]
    files = generated_files(spec)
    for k, v in files.items():
        if k.endswith(".swift"):
            assert not parse_errors("swift", v), k
    assert problems(files) == []
    runtime = files["Sources/LmHf/Runtime.swift"]
    assert 'functionName = "prefill"' in runtime and "prediction(from: inputs, using: state)" in runtime
    assert ".iOS(.v18)" in files["Package.swift"]
    manifest["model"]["lm"].pop("prefill_len")
    with pytest.raises(ConfigError, match="model.lm.prefill_len"):
        build_spec(d, "ios", manifest)


@pytest.mark.parametrize("target", ["web", "android"])
def test_a_core_ml_lm_does_not_fit_other_targets(tmp_path, target):
    d, manifest = lm_program_artifact(tmp_path, "coreml", "state", hf=True)
    with pytest.raises(ConfigError, match="does not fit target"):
        build_spec(d, target, manifest)


# --- real exports ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    import torch
    from tiny_bpe_llama import make

    torch.set_num_threads(1)
    return make(tmp_path_factory.mktemp("tiny-bpe-llama") / "ckpt", steps=20)


@pytest.fixture(scope="module")
def onnx_lm(tiny_ckpt, tmp_path_factory):
    from exporters.llm.onnx_artifact import export_onnx_lm_artifact

    return export_onnx_lm_artifact(tiny_ckpt, tmp_path_factory.mktemp("onnx") / "lm", max_seq_len=32).path


@pytest.mark.slow
def test_the_bundle_of_an_lm_package_stays_within_its_budget(onnx_lm, tmp_path):
    from exporters.llm.export_lm import bundle_budget
    from projdeploy.sdk import generate
    from projdeploy.sdk.selftest import bundle_bytes

    out = generate(onnx_lm, "web", tmp_path / "web")
    res = out / "assets"
    model = (res / "model.onnx").stat().st_size
    extra = bundle_bytes(res, ["model.onnx"])
    assert sorted(p.name for p in res.iterdir()) == sorted(
        ["model.onnx", "manifest.json", "tokenizer.json", "projdeploy_selftest.json"]
    )
    assert extra <= bundle_budget(model) and (res / "projdeploy_selftest.json").stat().st_size < 4096, extra
    assert not list(res.glob("*.npz")) and not list(res.glob("test_vectors*"))


@pytest.mark.slow
def test_a_bundle_over_budget_is_refused_and_nothing_is_written(onnx_lm, tmp_path):
    from projdeploy.sdk import generate

    art = tmp_path / "big"
    shutil.copytree(onnx_lm, art)
    m = json.loads((art / "manifest.json").read_text())
    # the tokenizer is the model's vocabulary and never counts; a bundled manifest padded over 1 MB does
    (art / "manifest.json").write_text(json.dumps(m) + " " * (1 << 20))
    with pytest.raises(ConfigError, match="over the budget"):
        generate(art, "web", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_large_tokenizer_does_not_count_against_the_bundle_budget(onnx_lm, tmp_path):
    """SmolLM2's tokenizer.json is 3.5 MB: the app needs it, so only the other bundled files are budgeted."""
    from projdeploy.fsutil import sha256_file
    from projdeploy.sdk import generate

    art = tmp_path / "big-vocab"
    shutil.copytree(onnx_lm, art)
    tok = art / "tokenizer.json"
    tok.write_text(tok.read_text() + " " * (2 << 20))  # still the same JSON, now over 2 MB
    m = json.loads((art / "manifest.json").read_text())
    m["files"]["tokenizer.json"] = {"sha256": sha256_file(tok), "size": tok.stat().st_size}
    (art / "manifest.json").write_text(json.dumps(m))
    out = generate(art, "web", tmp_path / "out")
    assert [p.stat().st_size > 2 << 20 for p in out.rglob("tokenizer.json")] == [True]  # bundled, whole


@pytest.mark.slow
def test_the_reference_self_test_and_greedy_follow_the_io_protocol(onnx_lm):
    from exporters.llm.onnx_program import ORTLMRunner
    from projdeploy.sdk.reference import Reference

    ref = Reference(onnx_lm, "web")
    rep = ref.self_test()
    assert rep["passed"] and rep["cases"] == 4 and rep["maxAbsDiff"] <= rep["atol"], rep
    prompt = ref.prompt_tokens("def f2(x):\n")
    got = ref.generate_tokens(prompt, max_new_tokens=50, stop_at_eos=False)  # past the 32-token window
    assert got[:20] == ORTLMRunner(onnx_lm / "model.onnx", max_seq_len=32).generate(prompt, 20)
    assert len(got) == 50


@pytest.mark.slow
def test_an_executorch_lm_program_package_bundles_the_self_test_and_the_tokenizer(tiny_ckpt, tmp_path):
    """exporters.llm's ExecuTorch program (cache inside) -> Android and iOS packages; the Python reference
    drives the .pte by the same protocol (self-test from the npz vectors, greedy tokens = LMRunner's)."""
    from exporters.llm.export_lm import bundle_budget, export_lm
    from exporters.llm.runner import LMRunner
    from projdeploy.sdk import check_generated, generate
    from projdeploy.sdk.reference import Reference
    from projdeploy.sdk.selftest import bundle_bytes

    art = export_lm(tiny_ckpt, "xnnpack-fp32", tmp_path / "et", max_seq_len=32).path
    for target, res in (("android", "src/main/assets/model"), ("ios", "Sources/Model/Resources")):
        out = generate(art, target, tmp_path / target)
        assert check_generated(out) == []
        files = sorted(p.name for p in (out / res).iterdir())
        assert files == ["manifest.json", "model.pte", "projdeploy_selftest.json", "tokenizer.json"], files
        assert bundle_bytes(out / res, ["model.pte"]) <= bundle_budget((out / res / "model.pte").stat().st_size)
    ref = Reference(art, "android")
    assert ref.self_test()["passed"]
    prompt = ref.prompt_tokens("def f4(x):\n")
    assert ref.generate_tokens(prompt, 12, stop_at_eos=False) == LMRunner(art / "model.pte").generate(prompt, 12)


@pytest.mark.slow
def test_the_cli_generates_an_lm_package_and_refuses_a_malformed_model_lm(onnx_lm, tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    res = CliRunner().invoke(cli, ["sdk", "--artifact", str(onnx_lm), "--target", "web", "--out", str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ok" / "assets" / "projdeploy_selftest.json").is_file()
    bad = tmp_path / "bad"
    shutil.copytree(onnx_lm, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["model"]["lm"]["kv_cache"] = "paged"
    (bad / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["sdk", "--artifact", str(bad), "--target", "web", "--out", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert str(bad / "manifest.json") in res.output and "model.lm.kv_cache" in res.output and "paged" in res.output
    assert not out.exists()


@pytest.mark.parametrize("layout", ["in_program", "static_prefill_decode"])
def test_an_lm_without_model_lm_is_refused(tmp_path, layout):
    """Every LM package is driven by model.lm; an LM manifest without it (a forward(tokens, input_pos) whose
    section was lost, or the former static-cache prefill + decode programs) gets no package."""
    d, manifest = lm_program_artifact(tmp_path, "executorch")
    del manifest["model"]["lm"]
    manifest["model"]["modality"] = "text"
    if layout == "static_prefill_decode":
        fwd = manifest["programs"].pop("forward")
        manifest["programs"] = {"prefill": fwd, "decode": fwd}
    for target in ("android", "ios"):
        with pytest.raises(ConfigError, match="model.lm': missing") as e:
            build_spec(d, target, manifest)
        assert str(d / "manifest.json") in str(e.value)
