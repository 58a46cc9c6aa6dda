"""ONNX LM program: prefill + decode with the cache as ORT OrtValues (IO binding), parity with transformers.

.venv/bin/python -m pytest tests/test_lm_onnx.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ort_runner(tmp_path_factory):
    pytest.importorskip("optimum.exporters.onnx")
    from exporters.llm.onnx_program import ORTLMRunner, export_onnx_lm
    from tests.test_lm_program import tiny_llama

    d = tmp_path_factory.mktemp("hf") / "tiny"
    tiny_llama().save_pretrained(d)
    return ORTLMRunner(export_onnx_lm(d, tmp_path_factory.mktemp("onnx")), max_seq_len=32)


@pytest.mark.parametrize("n_prompt", [1, 7, 19])
def test_onnx_prefill_decode_parity_with_transformers_cache(ort_runner, n_prompt):
    import onnxruntime as ort

    from tests.test_lm_program import VOCAB, hf_cached_logits, tiny_llama

    ids = np.random.default_rng(n_prompt).integers(0, VOCAB, 26)
    ref = hf_cached_logits(tiny_llama(), ids, n_prompt)
    got = [ort_runner.prefill(ids[:n_prompt].tolist())]
    got += [ort_runner.forward([int(t)]) for t in ids[n_prompt:]]
    np.testing.assert_allclose(np.stack(got), ref, atol=2e-5, rtol=0)
    assert all(isinstance(v, ort.OrtValue) for v in ort_runner.past)  # the cache stays in ORT
    assert ort_runner.past[0].shape()[2] == len(ids)


def test_onnx_window(ort_runner):
    from exporters.llm.runner import ContextWindowError

    ort_runner.prefill(list(range(32)))
    with pytest.raises(ContextWindowError, match="past the window of 32"):
        ort_runner.forward([1])
