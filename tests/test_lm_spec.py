"""Fast checks of the LM program's inputs: config validation, weight names, recipes, test vectors.

.venv/bin/python -m pytest tests/test_lm_spec.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from projdeploy.errors import CheckpointError, ConfigError, UnknownNameError

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def test_spec_of_smollm2_config():
    from exporters.llm.spec import lm_spec

    s = lm_spec(LLAMA, 256)
    assert (s.head_dim, s.n_kv_heads, s.eos_ids, s.max_seq_len) == (64, 3, (2,), 256)
    assert s.kv_cache_bytes == 2 * 30 * 3 * 256 * 64 * 4
    q = lm_spec({**LLAMA, "architectures": ["Qwen2ForCausalLM"]}, 64)
    assert q.qkv_bias and not q.qk_norm
    assert lm_spec({**LLAMA, "architectures": ["Qwen3ForCausalLM"], "head_dim": 128}, 64).qk_norm


@pytest.mark.parametrize(
    "change, field",
    [
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope_scaling"),
        ({"mlp_bias": True}, "mlp_bias"),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "hidden_act"),
    ],
)
def test_spec_refuses_what_the_program_would_compute_differently(change, field):
    from exporters.llm.spec import lm_spec

    with pytest.raises(CheckpointError, match=field):
        lm_spec({**LLAMA, **change}, 256)


def test_spec_refuses_other_architectures_and_windows():
    from exporters.llm.spec import lm_spec

    with pytest.raises(CheckpointError, match="GPT2LMHeadModel.*supported: LlamaForCausalLM"):
        lm_spec({**LLAMA, "architectures": ["GPT2LMHeadModel"]}, 256)
    with pytest.raises(CheckpointError, match="max_position_embeddings"):
        lm_spec({**LLAMA, "max_position_embeddings": 128}, 256)


def test_weight_names():
    from exporters.llm.weights import et_key, hf_to_et

    assert et_key("model.layers.3.self_attn.q_proj.weight") == "layers.3.attention.wq.weight"
    assert et_key("model.layers.3.self_attn.q_proj.bias") == "layers.3.attention.wq.bias"
    assert et_key("model.layers.0.mlp.gate_proj.weight") == "layers.0.feed_forward.w1.weight"
    assert et_key("model.layers.0.self_attn.k_norm.weight") == "layers.0.attention.k_norm_fn.weight"
    assert et_key("model.rotary_emb.inv_freq") is None
    out = hf_to_et({"model.embed_tokens.weight": 1, "model.norm.weight": 2}, tied=True)
    assert out == {"tok_embeddings.weight": 1, "norm.weight": 2, "output.weight": 1}


def test_recipes_validate_and_round_trip():
    from exporters.llm.recipes import LM_RECIPES, LMRecipe, get_lm_recipe

    for r in LM_RECIPES.values():
        assert LMRecipe.from_dict(r.to_dict()) == r
    assert get_lm_recipe("xnnpack-8da4w").group_size == 32
    with pytest.raises(UnknownNameError, match="xnnpack-8da4w"):
        get_lm_recipe("int3")
    with pytest.raises(ConfigError, match="group_size"):
        LMRecipe("x", linear="8da4w", group_size=20)
    with pytest.raises(ConfigError, match="embedding_bits"):
        LMRecipe("x", embedding_bits=2)
    with pytest.raises(ConfigError, match="unknown field"):
        LMRecipe.from_dict({"name": "x", "bits": 4})


class _FakeLogits:
    """Deterministic logits source with the runner's prefill/forward interface (vectors unit test)."""

    def __init__(self, vocab=50, shift=0.0):
        self.vocab, self.shift, self.pos = vocab, shift, 0

    def prefill(self, prompt):
        self.pos = 0
        return self.forward(prompt)

    def forward(self, tokens):
        self.pos += len(tokens)
        return np.sin(np.arange(self.vocab) * (self.pos + 1) + tokens[-1]).astype(np.float32) * 10 + self.shift


def test_vectors_are_small_and_detect_a_change(tmp_path):
    from exporters.llm.vectors import make_vectors, replay_vectors, write_vectors

    path = write_vectors(tmp_path, make_vectors(_FakeLogits(vocab=49152), [1, 2, 3], steps=4, k=8))
    assert path.stat().st_size < 4096  # npz headers; independent of the vocabulary
    assert replay_vectors(_FakeLogits(vocab=49152), path)["passed"]
    assert not replay_vectors(_FakeLogits(vocab=49152, shift=0.01), path)["passed"]


def test_lm_modules_import_cheaply():
    import subprocess
    import sys

    mods = "recipes, spec, weights, export_lm, runner, vectors, validate, et_program"
    code = (
        f"import sys; from exporters.llm import {mods}; "
        "print([m for m in ('torch', 'executorch', 'transformers', 'torchao') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_read_safetensors_reads_only_the_model_files(tmp_path):
    import torch
    from safetensors.torch import save_file

    from exporters.llm.weights import read_safetensors

    save_file({"model.norm.weight": torch.ones(4, dtype=torch.float16)}, str(tmp_path / "model.safetensors"))
    save_file({"model.norm.weight::exp_avg": torch.zeros(4)}, str(tmp_path / "optimizer.safetensors"))
    state = read_safetensors(tmp_path)
    assert list(state) == ["model.norm.weight"] and state["model.norm.weight"].dtype == torch.float32
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no \\*.safetensors"):
        read_safetensors(tmp_path / "empty")


def test_inferred_dim_views_and_transpose_pairs_rewrite_in_place():
    """The two exported-graph rewrites that keep a layer in one XNNPACK partition: same numbers."""
    import torch

    from exporters.llm.delegable import one_partition_per_layer

    class Heads(torch.nn.Module):
        def forward(self, x):
            b, t, _ = x.shape
            y = x.view(b, t, 2, 4).transpose(1, 2)  # (b, heads, t, d), as the attention hands it on
            return (y.transpose(1, 2) * 2.0).reshape(b, t, 8) + 1.0

    x = torch.randn(1, 5, 8)
    dyn = ({1: torch.export.Dim("t", min=2, max=31)},)
    ep = torch.export.export(Heads(), (x,), dynamic_shapes=dyn)
    changed = one_partition_per_layer(ep)
    assert changed == {"views_to_inferred_dim": 2, "transposes_removed": 2, "merged": 0}, changed
    shapes = [n.args[1] for n in ep.graph_module.graph.nodes if "view" in str(n.target) or "reshape" in str(n.target)]
    assert shapes and all(all(isinstance(d, int) for d in s) and -1 in s for s in shapes), shapes
    for t in (3, 17):
        x = torch.randn(1, t, 8)
        torch.testing.assert_close(ep.module()(x), Heads()(x), rtol=0, atol=0)


def test_duplicate_views_and_linears_on_one_input_are_computed_once():
    """Three linears of one shared weight on one input (the offset linears' group sums): one remains, same
    numbers; linears of different weights stay."""
    import torch

    from exporters.llm.delegable import merge_duplicates

    class Sums(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ones = torch.nn.Parameter(torch.ones(1, 4), requires_grad=False)
            self.other = torch.nn.Linear(8, 3, bias=False)

        def forward(self, x):
            s = [torch.nn.functional.linear(x.reshape(-1, 4), self.ones).reshape(1, -1, 2) for _ in range(3)]
            return s[0] + 2 * s[1] + 3 * s[2], self.other(x)

    x = torch.randn(1, 5, 8)
    ep = torch.export.export(Sums(), (x,))
    ref = ep.module()(x)
    assert merge_duplicates(ep.graph_module) == 2 * 3  # two of the three (view, linear, view) chains
    linears = [n for n in ep.graph_module.graph.nodes if str(n.target) == "aten.linear.default"]
    assert len(linears) == 2
    for a, b in zip(ep.module()(x), ref):
        torch.testing.assert_close(a, b)
