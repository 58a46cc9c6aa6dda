"""LM programs inside the Format protocol: registered recipes, Artifact.read, load_runner and check.

    .venv/bin/python -m pytest tests/test_lm_format.py -q -m "not slow"

The fast tests export projdeploy's tiny digits LM (the session checkpoint) as an ONNX decoder with
past (seconds); the ExecuTorch and Core ML artifacts of the same checkpoint are in the slow tier.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

TASK = "digits:0-4"


def test_lm_recipes_are_registered_versioned_and_round_trip():
    from exporters.recipes import recipe_from_dict
    from exporters.registry import list_lm_recipes

    lm = list_lm_recipes()
    assert {r.format for r in lm} == {"executorch", "onnx", "coreml"}
    for r in lm:
        assert r.version == 1 and recipe_from_dict(json.loads(json.dumps(r.to_dict()))) == r
        with pytest.raises(Exception):
            r.name = "x"


def test_unknown_lm_recipe_lists_the_known_names():
    from exporters.registry import get_format
    from projdeploy.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="xnnpack-8da4w-emb4"):
        get_format("executorch").recipe("int3", lm=True)
    with pytest.raises(UnknownNameError, match="int8-dynamic"):
        get_format("onnx").recipe("xnnpack-int8", lm=True)


def test_list_recipes_shows_the_lm_programs():
    from click.testing import CliRunner

    from projdeploy.cli import cli

    out = CliRunner().invoke(cli, ["export", "--list-recipes"]).output
    assert out.count("LM programs (LM tasks)") == 3 and "ONNXLMRecipe" in out and "CoreMLLMRecipe" in out


@pytest.fixture(scope="module")
def onnx_lm(tiny_lm_checkpoint, tmp_path_factory):
    from exporters.api import export_checkpoint

    out = tmp_path_factory.mktemp("lmf") / "lm-onnx"
    return export_checkpoint(tiny_lm_checkpoint, "onnx", "fp32", TASK, out)  # an LM task: its LM program


def test_artifact_read_and_load_runner_on_an_lm_artifact(onnx_lm):
    from exporters.base import Artifact
    from exporters.llm.recipes import ONNXLMRecipe
    from exporters.llm.vectors import replay_vectors
    from exporters.registry import load_runner

    art = Artifact.read(onnx_lm.path, verify=True)
    assert isinstance(art.recipe, ONNXLMRecipe) and art.recipe == onnx_lm.recipe
    lm = art.model["lm"]
    assert lm["kv_cache"] == "io" and lm["max_seq_len"] == 64 and art.model["config"]["model_type"] == "llama"
    assert lm["kv_io"][0] == ["past_key_values.0.key", "present.0.key"] and len(lm["kv_io"]) == 4
    v = art.validation
    assert v["passed"] and v["top1_agreement"] == 1.0 and v["rel_diff"] < 1e-5
    assert v["metric"] == "bits_per_dim" and abs(v["metric_artifact"] - v["metric_float"]) < 1e-5
    runner = load_runner(art.path)
    (a,) = runner.run("forward", [np.array([[17, 3, 4]]), np.array([0])])
    (b,) = runner.run("forward", [np.array([[5]]), np.array([3])])
    runner.reset()
    assert np.allclose(runner.forward([17, 3, 4, 5]), b[0], atol=1e-5) and a.shape == (1, 19)
    assert replay_vectors(runner, art.path / "test_vectors.npz")["passed"]


def test_check_measures_prefill_decode_and_bits_with_the_artifacts_own_runner(onnx_lm):
    from projdeploy.check import run_check

    rep = run_check(onnx_lm.path, TASK, ["pixel-8"], repeats=3, warmup=1).to_dict()
    (s,) = rep["artifacts"]
    host = s["measured"]
    assert set(host["programs"]) == {"prefill", "decode"} and host["lm"]["prompt_tokens"] == 32
    m = s["metric"]
    assert m["artifact_source"].startswith("measured on host") and abs(m["drop"]) < 1e-5
    est = s["estimates"]["pixel-8"]
    kv = 2 * 2 * 2 * 64 * 16 * 4  # K and V x 2 layers x 2 kv heads x 64 positions x head dim 16 x fp32
    assert est["memory"]["kv_cache_mb"] * 2**20 == pytest.approx(kv) and est["lm"]["decode_tok_s"] > 0
    keys = {f["key"].split("/")[-1] for f in rep["figures"]}
    assert {"host_latency_ms.prefill", "host_latency_ms.decode", "est_decode_tok_s", "metric"} <= keys


@pytest.mark.slow
def test_executorch_lm_artifact_reads_runs_and_checks(tiny_lm_checkpoint, tmp_path):
    from exporters.api import export_checkpoint
    from exporters.llm.recipes import LMRecipe
    from exporters.registry import load_runner
    from projdeploy.check import run_check

    art = export_checkpoint(tiny_lm_checkpoint, "executorch", "xnnpack-fp32", TASK, tmp_path / "et", lm_program=True)
    assert isinstance(art.recipe, LMRecipe) and art.validation["passed"]
    assert art.validation["delegation"]["backend"] == "xnnpack"
    assert load_runner(art.path).metadata["get_max_seq_len"] == 64
    (s,) = run_check(art.path, TASK, ["pixel-8"], repeats=3, warmup=1).to_dict()["artifacts"]
    assert s["runtime"] == "executorch-xnnpack" and abs(s["metric"]["drop"]) < 1e-5
    assert set(s["measured"]["programs"]) == {"prefill", "decode"}


@pytest.mark.slow
def test_coreml_lm_artifact_converts_and_says_it_cannot_run_here(tiny_lm_checkpoint, tmp_path):
    pytest.importorskip("coremltools")
    from exporters.api import export_checkpoint
    from exporters.base import Artifact, UnavailableError
    from exporters.registry import get_format, load_runner

    art = export_checkpoint(tiny_lm_checkpoint, "coreml", "fp16", TASK, tmp_path / "cm", lm_program=True)
    gap = get_format("coreml").host_gap(art.recipe)
    if gap is None:
        pytest.skip("macOS: the package runs here")
    assert Artifact.read(art.path, verify=True).main_file == "model.mlpackage"
    assert art.validation["passed"] is None and art.validation["runtime"] == gap
    assert set(art.programs) == {"decode", "prefill"} and art.model["lm"]["kv_cache"] == "state"
    with pytest.raises(UnavailableError, match="macOS"):
        load_runner(art.path)
