"""Fast exporter tests: registry, recipes, cheap import, numerics helpers, manifest, typed errors.

.venv/bin/python -m pytest tests/test_exporters.py -x -q
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exporters import registry
from exporters.base import ManifestError, Recipe, verify_manifest, write_manifest
from exporters.config import Config, config_from_dict
from exporters.format import Format
from exporters.recipes import (
    CoreMLInt4Block,
    CoreMLPalettize,
    CoreMLRecipe,
    ExecuTorchRecipe,
    ONNXRecipe,
    OrtInt8Dynamic,
    recipe_from_dict,
)
from projdeploy.errors import CheckpointError, ConfigError, UnknownNameError


def test_import_is_cheap():
    code = (
        "import sys, exporters, exporters.registry, exporters.api, exporters.recipes; "
        "heavy = [m for m in ('torch', 'executorch', 'coremltools', 'onnxruntime', 'onnx', 'transformers') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_matches_format_modules_both_ways():
    import importlib

    root = Path(registry.__file__).parent
    # every format module (exporters/*_export.py, or any module defining a Format) is registered ...
    found = {}
    for path in sorted(root.glob("*.py")):
        mod = importlib.import_module(f"exporters.{path.stem}")
        if isinstance(getattr(mod, "FORMAT", None), Format) or path.stem.endswith("_export"):
            found[mod.FORMAT.name] = mod.__name__
    assert found == registry.FORMATS
    # ... and every registered format has a module whose Format carries its name and recipes
    for name, module in registry.FORMATS.items():
        fmt = registry.get_format(name)
        assert isinstance(fmt, Format) and fmt.name == name and importlib.import_module(module).FORMAT is fmt
        assert fmt.recipes and all(r.name == k and r.format == name for k, r in fmt.recipes.items())
        assert all(isinstance(r, fmt.recipe_type) for r in fmt.recipes.values())


def test_every_quantization_config_has_a_handler():
    from exporters.coreml_export import COMPRESSORS
    from exporters.coreml_sim import SIMULATORS
    from exporters.et_quant import QUANTIZERS as ET
    from exporters.onnx_quant import QUANTIZERS as ORT

    tables = {"executorch": [ET], "onnx": [ORT], "coreml": [COMPRESSORS, SIMULATORS]}
    for r in registry.list_recipes():
        config = getattr(r, "quantization", None) or getattr(r, "compression", None)
        for table in tables[r.format] if config is not None else []:
            assert callable(table.handler(config)), (r.name, table.what)
    with pytest.raises(UnknownNameError, match="known ONNX quantization configs: OrtInt8Dynamic, OrtInt8Static"):
        ORT.handler(CoreMLPalettize())


def test_format_knowledge_for_check():
    """Runtime and precision of every recipe come from its format (golden values of projdeploy check)."""
    want = {
        ("executorch", "xnnpack-fp32"): ("executorch-xnnpack", "fp32", 4.0),
        ("executorch", "xnnpack-int8"): ("executorch-xnnpack", "int8-dynamic", 1.0),
        ("executorch", "xnnpack-8da4w"): ("executorch-xnnpack", "int4", 0.5 + 2 / 32),
        ("executorch", "coreml-delegate"): ("coreml", "fp16", 2.0),
        ("executorch", "qnn"): ("qnn-npu", "fp16", 2.0),
        ("executorch", "portable"): ("executorch-xnnpack", "fp32", 4.0),
        ("coreml", "fp16"): ("coreml", "fp16", 2.0),
        ("coreml", "int8-linear"): ("coreml", "int8", 1.0),
        ("coreml", "palettize-4bit"): ("coreml", "int4", 0.5),
        ("coreml", "palettize-6bit"): ("coreml", "int4", 0.75),
        ("coreml", "int4-block"): ("coreml", "int4", 0.5 + 2 / 32),
        ("onnx", "fp32"): ("onnxruntime-cpu", "fp32", 4.0),
        ("onnx", "fp32-ort"): ("onnxruntime-cpu", "fp32", 4.0),
        ("onnx", "optimum-fp32"): ("onnxruntime-cpu", "fp32", 4.0),
        ("onnx", "int8-dynamic"): ("onnxruntime-cpu", "int8-dynamic", 1.0),
        ("onnx", "int8-static"): ("onnxruntime-cpu", "int8", 1.0),
        ("onnx", "int8-weight-only"): ("onnxruntime-cpu", "int8", 1.0 + 4 / 32),  # fp32 scale per 32 weights
        ("onnx", "int4-weight-only"): ("onnxruntime-cpu", "int4", 0.5 + 4 / 32),
    }
    want_lm = {  # LM program recipes (exporters/llm/recipes.py)
        ("executorch", "xnnpack-fp32"): ("executorch-xnnpack", "fp32", 4.0),
        ("executorch", "xnnpack-int8"): ("executorch-xnnpack", "int8-dynamic", 1.0),
        ("executorch", "xnnpack-8da4w"): ("executorch-xnnpack", "int4", 0.5 + 2 / 32),
        ("executorch", "xnnpack-8da4w-offsets"): ("executorch-xnnpack", "int4", 0.5 + 3 / 32),  # + int8 offsets
        ("executorch", "xnnpack-8da4w-emb4"): ("executorch-xnnpack", "int4", 0.5 + 2 / 32),
        ("coreml", "fp16"): ("coreml", "fp16", 2.0),
        ("onnx", "fp32"): ("onnxruntime-cpu", "fp32", 4.0),
        ("onnx", "int8-dynamic"): ("onnxruntime-cpu", "int8-dynamic", 1.0),
    }
    assert set(want) == {(f.name, n) for f in registry.formats() for n in f.recipes}
    assert set(want_lm) == {(f.name, n) for f in registry.formats() for n in f.lm_recipes}
    assert len(registry.list_recipes()) == len(want) and len(registry.list_lm_recipes()) == len(want_lm)
    cases = [(k, v, False) for k, v in want.items()] + [(k, v, True) for k, v in want_lm.items()]
    for (f, name), (runtime, prec, wbytes), lm in cases:
        fmt = registry.get_format(f)
        r = fmt.recipe(name, lm=lm)
        p, why = fmt.precision(r)
        assert fmt.runtime(r)[0] == runtime and p.name == prec and math.isclose(p.weight_bytes, wbytes), (f, name)
        assert why
    # activations between operators: fp32 for dynamic quantization, int8 for static QDQ graphs
    onnx = registry.get_format("onnx")
    assert onnx.precision(onnx.recipe("int8-dynamic"))[0].act_bytes == 4.0
    assert onnx.precision(onnx.recipe("int8-static"))[0].act_bytes == 1.0
    # the one host rule per format: Core ML and the ExecuTorch Apple/Qualcomm delegates cannot run on Linux
    gaps = {(r.format, r.name) for f in registry.formats() for r in f.recipes.values() if f.host_gap(r)}
    if sys.platform == "linux":
        assert gaps == {("executorch", "coreml-delegate"), ("executorch", "qnn")} | {
            ("coreml", n) for n in registry.recipes("coreml")
        }


def test_required_recipes_exist():
    want = {
        "executorch": {"xnnpack-fp32", "xnnpack-int8", "xnnpack-8da4w", "coreml-delegate", "qnn", "portable"},
        "coreml": {"fp16", "int8-linear", "palettize-4bit", "palettize-6bit", "int4-block"},
        "onnx": {
            "fp32",
            "fp32-ort",
            "optimum-fp32",
            "int8-dynamic",
            "int8-static",
            "int8-weight-only",
            "int4-weight-only",
        },
    }
    for fmt, names in want.items():
        assert set(registry.recipes(fmt)) == names


def test_unknown_names_list_known():
    with pytest.raises(UnknownNameError, match="known formats: coreml, executorch, onnx"):
        registry.get_format("tflite")
    with pytest.raises(UnknownNameError, match="int8-dynamic"):
        registry.get_recipe("onnx", "int3")
    with pytest.raises(UnknownNameError, match="known ExecuTorch backends: coreml, portable, qnn, xnnpack"):
        __import__("exporters.et_backends", fromlist=["x"]).get_backend("vulkan")


@pytest.mark.parametrize("recipe", registry.list_recipes(), ids=lambda r: f"{r.format}-{r.name}")
def test_recipes_round_trip_and_frozen(recipe):
    d = recipe.to_dict()
    assert d["type"] == type(recipe).__name__ and d["version"] >= 1
    assert recipe_from_dict(json.loads(json.dumps(d))) == recipe
    for config in (getattr(recipe, "quantization", None), getattr(recipe, "compression", None)):
        if config is not None:  # nested configs serialise with their own type and version
            assert d.get("quantization", d.get("compression"))["version"] >= 1
            assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(Exception):
        recipe.name = "x"
    # exactly one validation mode: atol for float, SQNR floor for quantized
    assert (recipe.atol is None) != (recipe.sqnr_floor_db is None)


def test_recipe_validation_errors():
    with pytest.raises(ConfigError, match="backend"):
        ExecuTorchRecipe("x", "executorch", backend="vulkan", atol=1e-4)
    with pytest.raises(ConfigError, match="atol/sqnr_floor_db"):
        ONNXRecipe("x", "onnx")
    with pytest.raises(ConfigError, match="iOS18"):
        CoreMLRecipe("x", "coreml", compression=CoreMLInt4Block(), sqnr_floor_db=10)
    with pytest.raises(ConfigError, match="nbits"):
        CoreMLPalettize(nbits=5)
    with pytest.raises(ConfigError, match="quantization.*known: OrtInt8Dynamic, OrtInt8Static"):
        ONNXRecipe("x", "onnx", quantization=CoreMLPalettize(), sqnr_floor_db=10)
    with pytest.raises(UnknownNameError):
        recipe_from_dict({"type": "TFLiteRecipe", "name": "x"})
    with pytest.raises(ConfigError, match="unknown field"):
        recipe_from_dict({**ONNXRecipe("x", "onnx", atol=1e-4).to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="unknown field"):
        d = ONNXRecipe("x", "onnx", quantization=OrtInt8Dynamic(), sqnr_floor_db=20).to_dict()
        recipe_from_dict({**d, "quantization": {**d["quantization"], "bits": 3}})
    assert issubclass(ONNXRecipe, Config)


def test_sqnr_golden():
    ref = np.ones(100)
    assert math.isclose(__import__("exporters.validate", fromlist=["x"]).sqnr_db(ref, ref * 1.1), 20.0)
    from exporters.validate import sqnr_db

    assert sqnr_db(ref, ref) == math.inf


def test_coreml_simulation_numerics():
    import torch

    from exporters.coreml_sim import int4_per_block, int8_per_channel, palettize

    torch.manual_seed(0)
    w = torch.randn(16, 64)
    q8 = int8_per_channel(w)
    assert ((q8 - w).abs() <= w.abs().amax(1, keepdim=True) / 254 + 1e-6).all()
    for bits in (4, 6):
        p = palettize(w, bits)
        assert len(torch.unique(p)) <= 2**bits
    q4 = int4_per_block(w, 32)
    for b in range(2):
        blk = q4[:, b * 32 : (b + 1) * 32]
        scale = w[:, b * 32 : (b + 1) * 32].abs().amax(1, keepdim=True) / 7
        assert torch.allclose(torch.round(blk / scale), blk / scale, atol=1e-4)


def test_source_errors(tmp_path):
    from exporters.sources import load_source

    with pytest.raises(CheckpointError, match="does not exist"):
        load_source(tmp_path / "nope")
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"})
    )
    with pytest.raises(CheckpointError, match="supported architectures: LlamaForCausalLM"):
        load_source(tmp_path)


def test_export_checkpoint_typed_errors(tmp_path):
    from exporters.api import export_checkpoint

    with pytest.raises(CheckpointError):
        export_checkpoint(tmp_path / "nope", "onnx", "fp32", "digits-cls", tmp_path / "out")
    with pytest.raises(UnknownNameError):
        export_checkpoint(tmp_path, "onnx", "nope", "digits-cls", tmp_path / "out")
    with pytest.raises(UnknownNameError):
        export_checkpoint(tmp_path, "onnx", "fp32", "no-such-task", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_qnn_unavailable_is_typed(monkeypatch):
    from exporters.base import UnavailableError

    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    et = registry.get_format("executorch")
    if not et.available():
        pytest.skip("executorch not installed")
    with pytest.raises(UnavailableError, match="not available on this machine"):
        et.check_available(registry.get_recipe("executorch", "qnn"))


def test_manifest_tamper_detected(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    write_manifest(
        tmp_path, format="onnx", recipe=Recipe("r", "onnx"), main_file="model.bin", programs={}, model={}, validation={}
    )
    assert verify_manifest(tmp_path)["files"]["model.bin"]["size"] == 64
    (tmp_path / "model.bin").write_bytes(b"\x01" + b"\x00" * 63)
    with pytest.raises(ManifestError, match="tampered"):
        verify_manifest(tmp_path)


def test_cli_list_recipes_and_errors(tmp_path):
    from click.testing import CliRunner

    from projdeploy.cli import cli

    r = CliRunner().invoke(cli, ["export", "--list-recipes"])
    assert r.exit_code == 0
    for rec in registry.list_recipes():
        assert rec.name in r.output
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "--checkpoint",
            str(tmp_path / "nope"),
            "--format",
            "onnx",
            "--recipe",
            "fp32",
            "--task",
            "digits-cls",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code != 0 and "does not exist" in r.output


def test_strip_debug_metadata_keeps_the_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from exporters.onnx_export import ONNXRunner, strip_debug_metadata

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], doc_string="trace")
    node.metadata_props.add(key="pkg.torch.onnx.stack_trace", value="File model.py, line 1\n" * 50)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), str(path))
    x = np.ones((1, 3), np.float32)
    before = ONNXRunner(path).run("forward", [x])[0]
    assert strip_debug_metadata(path) > 1000
    g = onnx.load(str(path)).graph
    assert not g.node[0].metadata_props and g.node[0].doc_string == ""
    np.testing.assert_array_equal(ONNXRunner(path).run("forward", [x])[0], before)


def test_a_tied_output_layer_is_untied_so_both_copies_quantize(tmp_path):
    """Gather(W) + MatMul(h, Transpose(W)), as torch.onnx writes a tied LM head: after untying, the int4
    weight-only recipe quantizes the output layer (MatMulNBits) and the embedding; no float copy of W stays."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from exporters.onnx_quant import quantize, untie_transposed_weights
    from exporters.registry import get_recipe

    rng = np.random.default_rng(0)
    w = rng.normal(size=(256, 64)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["W", "ids"], ["emb"]),
            helper.make_node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
            helper.make_node("MatMul", ["emb", "Wt"], ["logits"]),
        ],
        "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8, 256])],
        [numpy_helper.from_array(w, "W")],
    )
    src = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    untied = untie_transposed_weights(src, tmp_path / "untied.onnx")
    m = onnx.load(str(untied))
    assert [n.op_type for n in m.graph.node] == ["Gather", "MatMul"]
    ids = rng.integers(0, 256, (1, 8))
    ref = ort.InferenceSession(str(src)).run(None, {"ids": ids})[0]
    np.testing.assert_array_equal(ort.InferenceSession(str(untied)).run(None, {"ids": ids})[0], ref)
    assert untie_transposed_weights(untied, tmp_path / "again.onnx") == untied  # nothing left to fold

    out = tmp_path / "q.onnx"
    quantize(src, out, get_recipe("onnx", "int4-weight-only"))
    q = onnx.load(str(out))
    assert "MatMulNBits" in {n.op_type for n in q.graph.node}
    float_tables = [i.name for i in q.graph.initializer if i.data_type == TensorProto.FLOAT and 256 * 64 in (
        int(np.prod(i.dims)),)]  # fmt: skip
    assert not float_tables, float_tables
    got = ort.InferenceSession(str(out)).run(None, {"ids": ids})[0]
    assert 10 * np.log10((ref**2).mean() / ((got - ref) ** 2).mean()) > 15  # 4-bit blocks, int8 table
