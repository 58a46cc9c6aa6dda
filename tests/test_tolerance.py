"""Scale-aware tolerances and error localisation on hand-made tensors and tiny modules.

.venv/bin/python -m pytest tests/test_tolerance.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from exporters.localize import Divergence, first_divergence, localize_torch
from exporters.recipes import ONNXRecipe, OrtInt8Dynamic
from exporters.tolerance import FP16, FP32, Tolerance, compare


def test_large_logits_pass_on_round_off_and_fail_on_real_error():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 8, (4, 64)).astype(np.float32)
    ref[0, 0] = 30.0  # a 30-layer LM's logits reach ~30
    # 2.9e-4 abs (the ExecuTorch fp32 SmolLM2 figure) is ~1e-5 of the logits' scale: round-off
    c = compare("logits", ref, ref + 2.9e-4, FP32)
    assert c.passed and c.bound == pytest.approx(1e-5 + 5e-5 * 30.0)
    assert c.rel_err == pytest.approx(2.9e-4 / 30.0, rel=1e-3)
    assert not compare("logits", ref, ref + 3e-3, FP32).passed  # 1e-4 relative: not round-off


def test_small_outputs_keep_a_tight_bound():
    ref = np.full((2, 3), 0.5)
    assert compare("logits", ref, ref + 2e-5, FP32).passed
    assert not compare("logits", ref, ref + 1e-4, FP32).passed  # 2e-4 relative on a toy: a real miss
    zero = np.zeros(5)
    assert compare("x", zero, zero + 9e-6, FP32).passed and not compare("x", zero, zero + 2e-5, FP32).passed


def test_fp16_is_looser_than_fp32_and_nan_always_fails():
    ref = np.linspace(-10, 10, 50)
    assert compare("l", ref, ref * (1 + 1e-3), FP16).passed and not compare("l", ref, ref * (1 + 1e-3), FP32).passed
    bad = ref.copy()
    bad[3] = np.nan
    c = compare("l", ref, bad, FP16)
    assert not c.passed and "logits" not in c.failure() and c.failure().startswith("l: max|diff| inf")


def test_shape_mismatch_and_negative_tolerances_are_typed():
    from exporters.base import ParityError
    from projdeploy.errors import ConfigError

    with pytest.raises(ParityError, match="shape"):
        compare("logits", np.zeros((2, 3)), np.zeros((3, 2)), FP32)
    with pytest.raises(ConfigError):
        Tolerance(atol=-1.0)
    with pytest.raises(ConfigError, match="atol/rtol"):
        ONNXRecipe("x", "onnx", atol=1e-4, rtol=-1.0)


def test_recipes_carry_their_backend_tolerance():
    from exporters import registry

    fp = [r for r in registry.list_recipes() if r.tolerance is not None]
    assert fp and all(r.tolerance in (FP32, FP16) for r in fp)
    assert registry.get_recipe("coreml", "fp16").tolerance == FP16
    assert registry.get_recipe("onnx", "fp32").tolerance == FP32
    assert registry.get_recipe("onnx", "int8-dynamic").tolerance is None


def test_first_divergence_names_the_first_failing_module():
    ref = {"a": np.ones(4), "b": np.ones(4) * 2, "c": np.ones(4) * 3}
    art = {"a": np.ones(4), "b": np.ones(4) * 2.5, "c": np.ones(4) * 9}
    kinds = {"a": "Linear", "b": "LayerNorm", "c": "Block"}

    def failed(r, a):
        return None if np.allclose(r, a) else "differs"

    d = first_divergence(ref, art, kinds, failed)
    assert d == Divergence("b", "LayerNorm", 2, "differs")
    assert "'b' (LayerNorm)" in d.message()
    assert first_divergence(ref, ref, kinds, failed) is None


def test_localize_torch_finds_a_corrupted_layer():
    import copy

    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).eval()
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken[2].weight.mul_(1.5)  # layer 2 is wrong; layer 0 is untouched
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    recipe = ONNXRecipe("fp32", "onnx", **FP32.as_fields())
    d = localize_torch(model, broken, [x], recipe)
    assert d is not None and d.module == "2" and d.kind == "Linear" and "max|diff|" in d.detail
    assert localize_torch(model, copy.deepcopy(model), [x], recipe) is None
    q = ONNXRecipe("q", "onnx", quantization=OrtInt8Dynamic(), sqnr_floor_db=20.0)
    assert localize_torch(model, broken, [x], q).detail.startswith("SQNR")


def test_recipe_table_in_the_docs_matches_the_registry():
    """docs/exporters.md lists every registered recipe once, with its real validation criterion."""
    import re
    from pathlib import Path

    from exporters import registry

    doc = (Path(__file__).resolve().parents[1] / "docs/exporters.md").read_text()
    table = "| format | recipe |" + doc.split("| format | recipe |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1].strip("`"))] = cells[-1]
    want = {(r.format, r.name): r for r in registry.list_recipes()}
    assert set(rows) == set(want)
    for key, crit in rows.items():
        r = want[key]
        if r.tolerance is not None:
            assert crit.startswith("float32 bound" if r.tolerance == FP32 else "float16 bound"), key
        else:
            assert re.match(rf"SQNR >= {r.sqnr_floor_db:g} dB", crit), key


def test_onnx_quant_configs_round_trip_and_validate():
    from exporters.config import config_from_dict
    from exporters.recipes import OrtWeightOnly
    from projdeploy.errors import ConfigError

    c = OrtWeightOnly(bits=4, algorithm="hqq", keep_float=["*lm_head"])
    assert c.keep_float == ("*lm_head",) and config_from_dict(c.to_dict()) == c
    import json

    assert config_from_dict(json.loads(json.dumps(OrtInt8Dynamic(keep_float=("a*",)).to_dict()))).keep_float == ("a*",)
    for bad in (dict(bits=3), dict(block_size=24), dict(algorithm="hqq", bits=8), dict(embeddings="int2")):
        with pytest.raises(ConfigError):
            OrtWeightOnly(**bad)


def test_keep_float_leaves_the_named_modules_unquantized():
    """The LM head / classifier kept float: torchao leaves its Linear alone, PT2E inserts no quantize op in it."""
    import torch

    from exporters.et_quant import QUANTIZERS, kept_float
    from exporters.programs import Program
    from exporters.recipes import PT2EInt8Dynamic, Torchao8da4w

    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU())
    model = torch.nn.Sequential()
    model.add_module("body", body)
    model.add_module("lm_head", torch.nn.Linear(32, 32))
    model.eval()
    prog = Program("forward", model, (torch.randn(1, 32),), [], [])
    assert kept_float(model, ("*head",)) == {"lm_head"} and kept_float(model, ()) == set()
    q = QUANTIZERS(Torchao8da4w(keep_float=["*head"]), prog)
    assert type(q.lm_head.weight) is torch.nn.Parameter and type(q.body[0].weight) is not torch.nn.Parameter
    gm = QUANTIZERS(PT2EInt8Dynamic(keep_float=("lm_head",)), prog)
    quantized = [n for n in gm.graph.nodes if "quantize" in str(n.target)]
    stacks = [str(n.meta.get("nn_module_stack", {})) for n in quantized]
    assert quantized and not any("lm_head" in s for s in stacks)


def _tiny_onnx(tmp_path):
    """A token model (embedding, two linears, head) exported by projdeploy's torch.onnx path."""
    import torch

    from exporters.onnx_export import _dynamo_export
    from exporters.programs import forward_program

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(64, 64)
            self.body = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 64))
            self.lm_head = torch.nn.Linear(64, 64, bias=False)

        def forward(self, input_ids):
            return self.lm_head(self.body(self.embed(input_ids)))

    torch.manual_seed(0)
    model = Tiny().eval()
    ids = torch.randint(0, 64, (4, 16))
    path = tmp_path / "m.onnx"
    _dynamo_export(forward_program(model, "lm", 16, ids, 64, dynamic=True), path, 18)
    with torch.no_grad():
        ref = model(ids).numpy()
    return path, ids.numpy(), ref


@pytest.mark.slow  # one torch.onnx export + four quantizations: ~30 s on a quiet 2-core machine
def test_onnx_recipes_keep_float_and_weight_only(tmp_path):
    import onnx

    from exporters.onnx_export import ONNXRunner
    from exporters.onnx_quant import quantize, scoped_nodes
    from exporters.recipes import OrtWeightOnly
    from exporters.validate import sqnr_db

    path, ids, ref = _tiny_onnx(tmp_path)
    head = scoped_nodes(path, ("*lm_head",))
    assert len(head) == 1 and len(scoped_nodes(path, ("body*",))) == 2

    def ops(p):
        return [n.op_type for n in onnx.load(str(p)).graph.node]

    dyn = ONNXRecipe("d", "onnx", quantization=OrtInt8Dynamic(keep_float=("*lm_head",)), sqnr_floor_db=20.0)
    quantize(path, tmp_path / "d.onnx", dyn)
    assert ops(tmp_path / "d.onnx").count("MatMulInteger") == 2 and "MatMul" in ops(tmp_path / "d.onnx")
    for bits, floor in ((8, 30.0), (4, 12.0)):
        q = OrtWeightOnly(bits=bits, block_size=32, embeddings="int8")
        out = tmp_path / f"w{bits}.onnx"
        quantize(path, out, ONNXRecipe("w", "onnx", quantization=q, sqnr_floor_db=12.0))
        o = ops(out)
        assert o.count("MatMulNBits") == 3 and "DequantizeLinear" in o, o  # embedding dequantized after Gather
        got = ONNXRunner(out).run("forward", [ids])[0]
        assert sqnr_db(ref, got) > floor


def test_every_recipe_survives_json_unchanged():
    """Manifests store ``recipe.to_dict()`` as JSON; reading it back must give the same dict and recipe."""
    import json

    from exporters import registry
    from exporters.recipes import recipe_from_dict

    for r in registry.list_recipes():
        d = json.loads(json.dumps(r.to_dict()))
        assert d == r.to_dict() and recipe_from_dict(d) == r, r.name
