"""LM programs with the KV cache inside the .pte: parity with transformers' own cache, window, metadata.

    .venv/bin/python -m pytest tests/test_lm_program.py -x -q

One tiny ``LlamaForCausalLM`` built by ``transformers`` (random weights, GQA, tied embeddings) is
exported once per module (fp32, XNNPACK); every check runs on that artifact.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporters.base import verify_manifest

pytestmark = pytest.mark.slow
WINDOW = 32
VOCAB = 96


def tiny_llama(seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=[2, 3],
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf") / "tiny-llama"
    tiny_llama().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def fp32_artifact(hf_dir, tmp_path_factory):
    from exporters.llm.export_lm import export_lm

    rows = np.random.default_rng(0).integers(4, VOCAB, (2, 24))
    return export_lm(
        hf_dir, "xnnpack-fp32", tmp_path_factory.mktemp("a") / "lm-fp32", max_seq_len=WINDOW, eval_rows=rows
    )


@pytest.fixture(scope="module")
def runner(fp32_artifact):
    from exporters.llm.runner import LMRunner

    return LMRunner(fp32_artifact.main_path)


def hf_cached_logits(model, ids, n_prompt):
    """transformers' own KV cache: prefill n_prompt tokens, then one token per call."""
    import torch

    with torch.no_grad():
        out = model(torch.as_tensor(ids[None, :n_prompt]), use_cache=True)
        logits, cache = [out.logits[0, -1].numpy()], out.past_key_values
        for p in range(n_prompt, len(ids)):
            out = model(torch.as_tensor(ids[None, p : p + 1]), past_key_values=cache, use_cache=True)
            logits.append(out.logits[0, -1].numpy())
            cache = out.past_key_values
    return np.stack(logits)


@pytest.mark.parametrize("n_prompt", [1, 7, 19])
def test_prefill_decode_parity_with_transformers_cache(runner, n_prompt):
    ids = np.random.default_rng(n_prompt).integers(0, VOCAB, 26)
    ref = hf_cached_logits(tiny_llama(), ids, n_prompt)
    got = [runner.prefill(ids[:n_prompt].tolist())]
    got += [runner.forward([int(t)]) for t in ids[n_prompt:]]
    np.testing.assert_allclose(np.stack(got), ref, atol=2e-5, rtol=0)
    assert runner.pos == len(ids)


def test_decode_past_the_window_raises(runner):
    from exporters.llm.runner import ContextWindowError

    runner.prefill(list(range(WINDOW - 1)))
    runner.forward([5])  # the last position of the window
    with pytest.raises(ContextWindowError, match=f"past the window of {WINDOW} tokens"):
        runner.forward([5])
    with pytest.raises(ContextWindowError, match="past the window"):
        runner.prefill(list(range(WINDOW + 1)))
    runner.reset()
    assert runner.forward([1]).shape == (VOCAB,)


def test_runner_metadata_methods(fp32_artifact, runner):
    md = runner.metadata
    assert md == {
        "get_max_seq_len": WINDOW,
        "get_max_context_len": WINDOW,
        "get_vocab_size": VOCAB,
        "get_n_layers": 2,
        "get_bos_id": 1,
        "get_eos_ids": [2, 3],
        "use_kv_cache": True,
        "use_sdpa_with_kv_cache": True,
        "enable_dynamic_shape": True,
    }
    assert fp32_artifact.manifest["model"]["lm"]["runner_metadata"] == md


def test_manifest_validation_and_small_vectors(fp32_artifact, runner):
    from exporters.llm.vectors import VECTORS_FILE, replay_vectors

    m = verify_manifest(fp32_artifact.path)
    v = m["validation"]
    assert v["passed"] is True and v["positions"] == 2 * 12
    assert v["rel_diff"] <= 1e-4 and v["top1_agreement"] == 1.0
    assert v["delegation"]["delegated_nodes"] > 0
    assert v["delegation"]["subgraphs"] == 2 + 2  # one XNNPACK partition per layer, embedding side, head
    assert [i["name"] for i in m["programs"]["forward"]["inputs"]] == ["tokens", "input_pos"]
    size = (fp32_artifact.path / VECTORS_FILE).stat().st_size
    assert size < 4096, size
    assert not (fp32_artifact.path / "test_vectors.json").exists()
    assert replay_vectors(runner, fp32_artifact.path / VECTORS_FILE)["passed"]


def test_generate_matches_transformers_greedy(runner):
    import torch

    prompt = [1, 17, 33, 50]
    model = tiny_llama()
    with torch.no_grad():
        ref = model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None)
    assert runner.generate(prompt, 10) == ref[0, len(prompt) :].tolist()


def test_bundle_stays_within_budget(fp32_artifact):
    from exporters.llm.export_lm import bundle_budget, bundle_files

    m = verify_manifest(fp32_artifact.path)
    files = bundle_files(m)
    assert files[0] == "model.pte" and "test_vectors.npz" in files
    model = (fp32_artifact.path / "model.pte").stat().st_size
    extra = sum((fp32_artifact.path / f).stat().st_size for f in files[1:])
    assert extra <= bundle_budget(model), (extra, files)
    assert extra < 64 * 1024  # manifest + tokenizer config + vectors of a 96-token vocabulary


def test_cli_exports_a_projdeploy_checkpoint_as_lm_program(tiny_lm_checkpoint, tmp_path):
    """projdeploy's own Llama checkpoint, quantized (torchao 8da8w + 8-bit embeddings), through the CLI."""
    from click.testing import CliRunner

    from exporters.llm.runner import LMRunner
    from projdeploy.cli import cli

    out = tmp_path / "lm-int8"
    args = ["export", "--checkpoint", str(tiny_lm_checkpoint), "--format", "executorch", "--recipe", "xnnpack-int8"]
    res = CliRunner().invoke(cli, [*args, "--task", "digits:0-4", "--out", str(out), "--lm-program"])
    assert res.exit_code == 0, res.output
    assert "top-1 agreement" in res.output
    m = verify_manifest(out)
    v = m["validation"]
    assert v["passed"] and v["bits_per_byte_drop"] <= 0.02, v
    assert m["recipe"]["linear"] == "8da8w" and m["recipe"]["embedding_bits"] == 8
    assert "projdeploy_tokenizer.json" in m["files"]
    r = LMRunner(out / "model.pte")
    assert r.max_seq_len == m["model"]["lm"]["max_seq_len"] == 64
