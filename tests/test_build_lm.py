"""``projdeploy build`` of a language-model task: LM programs end to end, and what the app bundles.

    .venv/bin/python -m pytest tests/test_build_lm.py -q

A tiny pycode domain (``pycode:json``), 2 pretraining and 2 fine-tuning steps, a target of one
ExecuTorch fp32 artifact with the Android SDK. The build must export the LM program (KV cache inside,
``test_vectors.npz``), check it with its own runner (prefill / decode latency, bits per byte, KV cache
in the memory estimate) and generate the SDK; the SDK package bundles, besides the model, no more than
``bundle_budget`` (1% of the model file, at least 1 MB).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from projdeploy.cli import cli

pytestmark = pytest.mark.slow
TARGET = """name: lm-android
description: one ExecuTorch LM program and the Android SDK (tests)
artifacts:
  - {format: executorch, recipe: xnnpack-fp32}
  - {format: executorch, recipe: qnn, optional: true}
profiles: [pixel-8]
sdk: android
sdk_artifact: executorch/xnnpack-fp32
"""


@pytest.fixture(scope="module")
def lm_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("build-lm")
    (root / "lm-android.yaml").write_text(TARGET)
    args = ["build", "--task", "pycode:json", "--target", str(root / "lm-android.yaml"), "--cache-dir", str(root / "c")]
    args += ["--pretrain-steps", "2", "--finetune-steps", "2", "--out", str(root / "dist")]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output  # 1: a budget line failed (2 training steps), the package is built
    assert "skipped optional executorch/qnn" in r.output
    return root / "dist" / "pycode_json-lm-android"


def test_build_of_an_lm_task_exports_checks_and_packages_the_lm_program(lm_build):
    from exporters.base import Artifact
    from exporters.llm.recipes import LMRecipe

    m = json.loads((lm_build / "manifest.json").read_text())
    (entry,) = m["artifacts"]
    art = Artifact.read(lm_build / entry["path"], verify=True)
    assert isinstance(art.recipe, LMRecipe) and art.model["lm"]["kv_cache"] == "in_program"
    assert art.validation["passed"] and "test_vectors.npz" in art.files and "test_vectors.json" not in art.files
    report = json.loads((lm_build / "report.json").read_text())
    (s,) = report["artifacts"]
    assert set(s["measured"]["programs"]) == {"prefill", "decode"} and s["metric"]["name"] == "bits_per_byte"
    assert (
        s["estimates"]["pixel-8"]["memory"]["kv_cache_mb"] > 0 and s["estimates"]["pixel-8"]["lm"]["decode_tok_s"] > 0
    )


def test_the_lm_sdk_bundles_test_data_within_the_budget(lm_build):
    from exporters.llm.export_lm import bundle_budget
    from projdeploy.sdk import resource_dir
    from projdeploy.sdk.spec import SPEC_FILE

    spec = json.loads((lm_build / "sdk" / SPEC_FILE).read_text())
    res = lm_build / "sdk" / resource_dir(spec)
    files = {p.name: p.stat().st_size for p in res.rglob("*") if p.is_file()}
    model = files.pop(spec["model_file"])
    assert set(files) == set(spec["resources"]) - {spec["model_file"]}, files
    assert not any(n.endswith("test_vectors.json") for n in files)
    assert sum(files.values()) <= bundle_budget(model), (files, model)
