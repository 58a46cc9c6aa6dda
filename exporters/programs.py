"""The programs an artifact holds, with their I/O contract (see docs/exporters.md).

    python -c "from exporters.programs import programs_for; help(programs_for)"

Classifiers and image models: one ``forward`` program,
``input_ids`` int64 (B, T) -> ``logits`` float32 (B, num_labels).

Language models, single forward (ONNX, web): ``forward``,
``input_ids`` int64 (B, T) -> ``logits`` float32 (B, T, vocab).

Language models, decode-ready (ExecuTorch): a static KV cache of S = task
sequence length positions, passed in and out explicitly (no hidden state):

- ``prefill``: ``input_ids`` int64 (1, S), prompt left-aligned and padded to S
  -> ``logits`` (1, S, V), ``k_cache``/``v_cache`` float32 (L, 1, KV, S, hd).
  Read the logits at position n-1 for a prompt of n tokens.
- ``decode``: ``input_ids`` int64 (1, 1), ``input_pos`` int64 (1,) (= n, n+1, ...),
  ``k_cache``, ``v_cache`` -> ``logits`` (1, 1, V), updated ``k_cache``, ``v_cache``.
  Cache rows >= input_pos are masked, so prefill padding never leaks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .base import TensorSpec


@dataclass(frozen=True)
class Program:
    name: str
    module: object  # torch.nn.Module
    example: tuple  # example input tensors
    inputs: list  # [TensorSpec]
    outputs: list  # [TensorSpec]
    dynamic: dict | None = None  # torch.export dynamic_shapes (ONNX forward only)
    source: Path | None = None  # the checkpoint directory the module was loaded from
    kind: str = "cls"  # "lm" | "cls"

    def spec(self) -> dict:
        return {"inputs": self.inputs, "outputs": self.outputs}


def _kv_modules():
    import torch
    from torch import nn

    from projdeploy.models.llama import rope_cos_sin

    class Prefill(nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids):
            bb = self.lm.model
            x = bb.embed_tokens(input_ids)
            cos, sin = bb.rope(input_ids.shape[1])
            ks, vs = [], []
            for layer in bb.layers:
                q, k, v = layer.self_attn.project_qkv(layer.input_layernorm(x), cos, sin)
                ks.append(k)
                vs.append(v)
                x = x + layer.self_attn.attend(q, k, v)
                x = x + layer.mlp(layer.post_attention_layernorm(x))
            return self.lm.lm_head(bb.norm(x)), torch.stack(ks), torch.stack(vs)

    class Decode(nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, input_pos, k_cache, v_cache):
            bb, cfg = self.lm.model, self.lm.config
            S = k_cache.shape[3]
            cos, sin = rope_cos_sin(input_pos, cfg.resolved_head_dim, cfg.rope_theta)
            slots = torch.arange(S, dtype=input_pos.dtype)
            sel = (slots == input_pos).to(k_cache.dtype).view(1, 1, S, 1)
            allowed = (slots <= input_pos).view(1, S)
            x = bb.embed_tokens(input_ids)
            ks, vs = [], []
            for i, layer in enumerate(bb.layers):
                q, k, v = layer.self_attn.project_qkv(layer.input_layernorm(x), cos, sin)
                kc = k_cache[i] * (1.0 - sel) + k * sel
                vc = v_cache[i] * (1.0 - sel) + v * sel
                ks.append(kc)
                vs.append(vc)
                x = x + layer.self_attn.attend(q, kc, vc, mask=allowed)
                x = x + layer.mlp(layer.post_attention_layernorm(x))
            return self.lm.lm_head(bb.norm(x)), torch.stack(ks), torch.stack(vs)

    return Prefill, Decode


def kv_cache_programs(model, seq_len: int, example_ids) -> list[Program]:
    """prefill + decode programs for projdeploy's Llama module (static cache of ``seq_len``)."""
    import torch

    Prefill, Decode = _kv_modules()
    cfg = model.config
    L, KV, hd, V = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.resolved_head_dim, cfg.vocab_size
    cache = (L, 1, KV, seq_len, hd)
    ids = torch.as_tensor(example_ids[:1, :seq_len], dtype=torch.int64)
    kc = torch.zeros(cache)
    pos = torch.tensor([seq_len // 2], dtype=torch.int64)
    caches_out = [TensorSpec("k_cache", cache, "float32"), TensorSpec("v_cache", cache, "float32")]
    prefill = Program(
        "prefill",
        Prefill(model).eval(),
        (ids,),
        [TensorSpec("input_ids", (1, seq_len), "int64")],
        [TensorSpec("logits", (1, seq_len, V), "float32"), *caches_out],
    )
    decode = Program(
        "decode",
        Decode(model).eval(),
        (ids[:, :1], pos, kc, kc.clone()),
        [TensorSpec("input_ids", (1, 1), "int64"), TensorSpec("input_pos", (1,), "int64"), *caches_out],
        [TensorSpec("logits", (1, 1, V), "float32"), *caches_out],
    )
    return [prefill, decode]


def forward_program(model, kind: str, seq_len: int, example_ids, num_out: int, dynamic: bool = False) -> Program:
    import torch

    ids = torch.as_tensor(example_ids[: 2 if dynamic else 1, :seq_len], dtype=torch.int64)
    if dynamic:
        from torch.export import Dim

        dyn = {"input_ids": {0: Dim("batch", min=1, max=1024)}}
        b, t = "batch", seq_len
        if kind == "lm":
            dyn["input_ids"][1] = Dim("seq", min=2, max=seq_len)
            t = "seq"
    else:
        dyn, b, t = None, 1, seq_len
    out = (b, num_out) if kind == "cls" else (b, t, num_out)
    return Program(
        "forward",
        model,
        (ids,),
        [TensorSpec("input_ids", (b, t), "int64")],
        [TensorSpec("logits", out, "float32")],
        dyn,
    )


def programs_for(src, task, kv_cache: bool, dynamic: bool = False) -> list[Program]:
    """The programs to export for a loaded source on a task (see the module docstring)."""
    ex = task.example_inputs(batch=2)
    cfg = src.hf_config
    if src.kind == "cls":
        from .hf_models import num_labels

        progs = [forward_program(src.model, "cls", task.seq_len, ex, num_labels(cfg), dynamic)]
    elif kv_cache and src.native:
        progs = kv_cache_programs(src.model, task.seq_len, ex)
    else:
        progs = [forward_program(src.model, "lm", task.seq_len, ex, int(cfg["vocab_size"]), dynamic)]
    return [replace(p, source=src.path, kind=src.kind) for p in progs]
