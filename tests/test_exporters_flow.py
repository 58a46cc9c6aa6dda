"""End-to-end export flows: every format x recipe on a tiny classifier, HF checkpoints, typed failures.

    .venv/bin/python -m pytest tests/test_exporters_flow.py -x -q

Each flow exports, validates in the real runtime (Core ML: simulated, stated),
checks the manifest, replays test_vectors.json through ``load_runner`` and
detects a tampered file. Missing backends skip with the exporter's reason.

Cost: every artifact is exported exactly once and every check runs on that
artifact (onnx/int8-dynamic is the CLI test's artifact, not a matrix case).
Nearly all the time is the toolchains' lowering (XNNPACK's per-partition
passes: about 45-60 s per quantized ExecuTorch case on a loaded 2-core box),
not validation; LM and failure cases validate on fewer rows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from exporters import registry
from exporters.base import Artifact, ManifestError, ParityError, UnavailableError, verify_manifest

pytestmark = pytest.mark.slow
ROWS = 128  # eval rows for validation in tests: one flipped row (0.8%) stays inside the 2% budget
LM_ROWS = 32  # LM metric (bits/dim) is an average over 32 x 64 tokens: no single-row flip
CLI_CASE = ("onnx", "int8-dynamic")  # exported (and fully checked) by test_cli_export_end_to_end
MATRIX = [(r.format, r.name) for r in registry.list_recipes() if (r.format, r.name) != CLI_CASE]


def _export(ckpt, fmt, recipe, task, out, rows=ROWS, **kw):
    from exporters.api import export_checkpoint

    try:
        return export_checkpoint(ckpt, fmt, recipe, task, out, max_rows=rows, **kw)
    except UnavailableError as e:
        pytest.skip(str(e))


def _check_artifact(d, recipe):
    m = verify_manifest(d)
    assert m["recipe"] == recipe.to_dict()
    assert {"task", "task_kind", "modality", "config", "labels", "image_shape", "tokenizer_file"} <= set(m["model"])
    assert (d / "projdeploy_tokenizer.json").is_file() and "projdeploy_tokenizer.json" in m["files"]
    assert any(f == m["main_file"] or f.startswith(m["main_file"] + "/") for f in m["files"])
    for f, rec in m["files"].items():
        assert rec["size"] == (d / f).stat().st_size and len(rec["sha256"]) == 64
    assert "torch" in m["tools"]
    _check_recipe_figures(m["validation"], recipe)
    for prog in m["programs"].values():
        assert prog["inputs"][0]["name"] == "input_ids" and prog["outputs"][0]["name"] == "logits"
    return m


def _check_recipe_figures(v, recipe):
    """The recipe test, in one place: float recipes match eager within atol, quantized ones keep their SQNR
    floor, every one keeps the task metric, and ExecuTorch lowers every matmul-class node to its delegate."""
    assert v["passed"] is True
    if recipe.tolerance is not None:  # the scale-aware bound, per output
        out = v["outputs"]["logits"]
        assert out["passed"] and out["max_abs_diff"] <= recipe.tolerance.bound(out["max_abs_ref"])
    else:
        assert v["sqnr_db"] >= recipe.sqnr_floor_db
    assert v["metric_drop"] <= v["thresholds"]["max_metric_drop"]
    if recipe.format == "executorch":
        deleg = v["delegation"]
        if recipe.backend == "portable":
            assert deleg["fraction"] == 0.0 and deleg["compute_fraction"] == 0.0
        else:  # every matmul-class node (the FLOPs) is delegated; views etc. need not be
            assert deleg["fraction"] > 0.3 and deleg["compute_fraction"] == 1.0


def _replay_vectors(path):
    tv = json.loads((path / "test_vectors.json").read_text())
    art = Artifact.read(path)
    if registry.get_format(art.format).host_gap(art.recipe):
        assert tv["simulated"] is True
        with pytest.raises(UnavailableError, match="not on this machine|macOS"):
            registry.load_runner(path)
        return
    runner = registry.load_runner(path)
    for case in tv["cases"]:
        out = runner.run(tv["program"], [np.asarray(case["inputs"]["input_ids"], np.int64)])[0]
        np.testing.assert_allclose(out, np.asarray(case["outputs"]["logits"]), atol=1e-5)


def _tamper(path, main_file):
    files = (
        sorted(p for p in (path / main_file).rglob("*") if p.is_file())
        if (path / main_file).is_dir()
        else [path / main_file]
    )
    data = bytearray(files[-1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[-1].write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="tampered"):
        verify_manifest(path)


@pytest.mark.parametrize("fmt,name", MATRIX, ids=[f"{f}-{n}" for f, n in MATRIX])
def test_flow_matrix_classifier(tiny_cls_checkpoint, tmp_path, fmt, name):
    recipe = registry.get_recipe(fmt, name)
    art = _export(tiny_cls_checkpoint, fmt, name, "digits-cls", tmp_path / "art")
    m = _check_artifact(art.path, recipe)
    assert m["model"]["task_kind"] == "cls" and m["model"]["labels"] == [str(i) for i in range(10)]
    if fmt == "executorch":  # delegation itself is checked with the other recipe figures
        assert m["validation"]["delegation"]["methods"]["forward"]["compute_nodes"] >= 2 * 7  # 2 layers x 7 proj.
    if fmt == "onnx" and recipe.exporter == "dynamo":  # no per-node stack traces shipped in the model
        import onnx

        g = onnx.load(str(art.path / m["main_file"])).graph
        kept = {p.key for n in g.node for p in n.metadata_props}
        assert kept <= {"pkg.torch.onnx.name_scopes"}  # module scopes (for localisation), no stack traces
    if fmt == "coreml":
        assert m["validation"]["simulated"] is True and "macOS" in m["validation"]["runtime"]
    _replay_vectors(art.path)
    _tamper(art.path, m["main_file"])


def test_parity_failure_raises_and_leaves_nothing(tiny_cls_checkpoint, tmp_path):
    from exporters.recipes import ONNXRecipe, OrtInt8Dynamic

    strict = ONNXRecipe("int8-impossible", "onnx", quantization=OrtInt8Dynamic(), sqnr_floor_db=200.0)
    with pytest.raises(ParityError, match="sqnr_db") as e:
        _export(tiny_cls_checkpoint, "onnx", strict, "digits-cls", tmp_path / "bad", rows=16)
    assert e.value.figures["sqnr_db"] < 200 and e.value.figures["passed"] is False
    assert not (tmp_path / "bad").exists()


def _hf_checkpoint(path, kind):
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if kind == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=19, n_positions=64, n_embd=32, n_layer=2, n_head=2))
    else:
        cfg = tf.BertConfig(
            vocab_size=19,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=10,
            id2label={i: str(i) for i in range(10)},
            label2id={str(i): i for i in range(10)},
        )
        model = tf.BertForSequenceClassification(cfg)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.mark.parametrize(
    "kind,task,fmt,recipe",
    [("bert", "digits-cls", "onnx", "optimum-fp32")],
)
def test_hf_checkpoints(tmp_path, kind, task, fmt, recipe):
    ckpt = _hf_checkpoint(tmp_path / kind, kind)
    art = _export(ckpt, fmt, recipe, task, tmp_path / "art", rows=LM_ROWS if task.startswith("digits:") else ROWS)
    m = _check_artifact(art.path, registry.get_recipe(fmt, recipe))
    assert m["model"]["architecture"].startswith("GPT2" if kind == "gpt2" else "Bert")
    _replay_vectors(art.path)


def test_an_lm_task_without_an_lm_program_architecture_is_a_typed_error(tmp_path):
    """LM tasks export LM programs (exporters/llm); GPT-2 has none: the error names the supported ones."""
    from projdeploy.errors import CheckpointError

    ckpt = _hf_checkpoint(tmp_path / "gpt2", "gpt2")
    with pytest.raises(CheckpointError, match="GPT2LMHeadModel.*supported: LlamaForCausalLM"):
        _export(ckpt, "onnx", "fp32", "digits:0-4", tmp_path / "art", rows=LM_ROWS)
    assert not (tmp_path / "art").exists()


def test_kind_mismatch_is_typed(tiny_lm_checkpoint, tmp_path):
    from projdeploy.errors import CheckpointError

    with pytest.raises(CheckpointError, match="cannot serve task"):
        _export(tiny_lm_checkpoint, "onnx", "fp32", "digits-cls", tmp_path / "x")


def test_cli_export_end_to_end(tiny_cls_checkpoint, tmp_path):
    """The CLI path of the matrix case onnx/int8-dynamic: same checks, one export."""
    from click.testing import CliRunner

    from projdeploy.cli import cli

    out = tmp_path / "cli"
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "--checkpoint",
            str(tiny_cls_checkpoint),
            "--format",
            CLI_CASE[0],
            "--recipe",
            CLI_CASE[1],
            "--task",
            "digits-cls",
            "--out",
            str(out),
            "--max-rows",
            str(ROWS),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "SQNR" in r.output and verify_manifest(out)["recipe"]["name"] == CLI_CASE[1]
    m = _check_artifact(out, registry.get_recipe(*CLI_CASE))
    assert m["programs"]["forward"]["inputs"][0]["shape"] == ["batch", 64]
    _replay_vectors(out)
    _tamper(out, m["main_file"])
