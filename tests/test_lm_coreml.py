"""Core ML LM package: stateful KV cache (iOS 18) that converts; the same functions in PyTorch match transformers.

.venv/bin/python -m pytest tests/test_lm_coreml.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_coreml_stateful_package_converts_and_matches(tmp_path):
    pytest.importorskip("coremltools")
    import torch

    from exporters.llm.coreml_program import export_coreml_lm, simulate
    from exporters.llm.spec import lm_spec
    from exporters.llm.weights import hf_to_et
    from tests.test_lm_program import tiny_llama

    hf = tiny_llama()
    spec = lm_spec(hf.config.to_dict() | {"architectures": ["LlamaForCausalLM"]}, 32)
    state = hf_to_et(hf.state_dict(), True)
    info = export_coreml_lm(spec, state, tmp_path / "lm.mlpackage", prefill_len=8)
    assert info["inputs"] == ["tokens", "input_pos"] and info["outputs"] == ["logits"]
    assert len(info["states"]) == 2 * spec.n_layers
    import coremltools as ct

    desc = ct.models.MLModel(str(tmp_path / "lm.mlpackage"), skip_model_load=True).get_spec().description
    funcs = {f.name: f for f in desc.functions}
    assert sorted(funcs) == ["decode", "prefill"] and desc.defaultFunctionName == "decode"
    for name, T in (("decode", 1), ("prefill", 8)):
        f = funcs[name]
        assert [i.name for i in f.input] == ["tokens", "input_pos"]
        assert list(f.input[0].type.multiArrayType.shape) == [1, T]
        shapes = [list(s.type.stateType.arrayType.shape) for s in f.state]
        assert shapes == [[1, spec.n_kv_heads, 32, spec.head_dim]] * (2 * spec.n_layers)

    prompt = np.random.default_rng(1).integers(0, 96, 12).tolist()
    got = simulate(spec, state, prompt, steps=6, prefill_len=8)
    with torch.no_grad():
        ref = hf(torch.tensor([prompt])).logits[0, 5:].numpy()
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)
