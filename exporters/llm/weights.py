"""Hugging Face decoder weights -> the state dict of ExecuTorch's Llama transformer.

    python -c "from exporters.llm.weights import hf_to_et; help(hf_to_et)"

The ExecuTorch model runs with ``use_hf_rope=True`` (the "rotate_half" RoPE layout of Hugging
Face), so q/k projections are copied unchanged, not permuted. Weights are read from safetensors
only (never pickle). Tied embeddings give the output layer the embedding tensor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_TOP = {
    "model.embed_tokens.weight": "tok_embeddings.weight",
    "model.norm.weight": "norm.weight",
    "lm_head.weight": "output.weight",
}
_IN_LAYER = {
    "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo",
    "self_attn.q_norm": "attention.q_norm_fn",
    "self_attn.k_norm": "attention.k_norm_fn",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "feed_forward.w1",
    "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3",
}


def et_key(hf_key: str) -> str | None:
    """The ExecuTorch Llama name of a Hugging Face parameter (None: not part of the program)."""
    if hf_key in _TOP:
        return _TOP[hf_key]
    m = _LAYER.match(hf_key)
    if not m:
        return None
    module, _, leaf = m.group(2).rpartition(".")
    if module not in _IN_LAYER:
        return None
    return f"layers.{m.group(1)}.{_IN_LAYER[module]}.{leaf}"


def hf_to_et(state: dict, tied: bool) -> dict:
    """Rename a Hugging Face ``LlamaForCausalLM``-family state dict for ``construct_transformer``."""
    out = {}
    for k, v in state.items():
        name = et_key(k)
        if name is not None:
            out[name] = v
    if "output.weight" not in out and tied:
        out["output.weight"] = out["tok_embeddings.weight"]
    return out


def read_safetensors(checkpoint_dir: str | Path) -> dict:
    """Every tensor of a (possibly sharded) safetensors checkpoint, as float32."""
    import torch
    from safetensors.torch import load_file

    path = Path(checkpoint_dir)
    index = path / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else []
    # the model's own files only (a training checkpoint dir also holds optimizer state as safetensors)
    files = [path / f for f in files] or sorted(path.glob("model*.safetensors"))
    if not files:
        from projdeploy.errors import CheckpointError

        raise CheckpointError(f"{path}: no *.safetensors weights (pickled weights are never loaded)")
    state = {}
    for f in files:
        state.update(load_file(str(f)))
    return {k: v.to(torch.float32) for k, v in state.items()}
