"""Truncation: the naive projection baseline (slice the big model's weights).

    projdeploy project --big runs/dense --task digits:7 --method truncate --out runs/digits7-trunc

The small model keeps the first ``d_s`` hidden channels, the first ``p_s`` MLP
units, the first ``L_s`` layers, the first ``KV_s`` key/value heads with the
first query heads of each of their groups (so grouped-query attention keeps
its pairing), and for every kept head the channels whose RoPE frequencies the
small model uses (the small head of size ``hd_s`` uses every ``hd/hd_s``-th
frequency of the big one), so that slicing does not scramble the rotary pairs. This is the strongest plain slicing we know; it is
the baseline every projection must beat. Also home of the helpers shared with
the projector: the small config derived from a big one and the channel maps.
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError
from ..models import ModelConfig, build_model
from ..models.config import SIZES


def small_config_for(big: ModelConfig, size: str = "tiny", **overrides) -> ModelConfig:
    """The small config a big one projects to: preset ``size``, the big model's vocab/special tokens/heads."""
    from ..errors import UnknownNameError

    if size not in SIZES:
        raise UnknownNameError("size", size, SIZES)
    kw = dict(SIZES[size])
    kw.update(overrides)
    cfg = big.replace(**kw, head_dim=None)
    check_projectable(big, cfg)
    return cfg


def check_projectable(big: ModelConfig, small: ModelConfig) -> None:
    def bad(why):
        raise CheckpointError(
            f"cannot project a big model (d={big.hidden_size}, L={big.num_hidden_layers}, "
            f"H={big.num_attention_heads}) to (d={small.hidden_size}, L={small.num_hidden_layers}, "
            f"H={small.num_attention_heads}): {why}"
        )

    if big.is_classifier:
        bad("the big model must be a causal LM, not a classifier")
    H, KV, Hs, KVs = (
        big.num_attention_heads,
        big.num_key_value_heads,
        small.num_attention_heads,
        small.num_key_value_heads,
    )
    if Hs > H or KVs > KV or Hs // KVs > H // KV:
        bad(
            f"the small model's heads ({Hs} query, {KVs} key/value) must be a subset of the big one's "
            f"({H} query, {KV} key/value) with at most {H // KV} query heads per key/value head"
        )
    for f in ("hidden_size", "intermediate_size", "num_hidden_layers"):
        if getattr(small, f) > getattr(big, f):
            bad(f"{f} of the small model exceeds the big one's")
    hd, hs = big.resolved_head_dim, small.resolved_head_dim
    if hs > hd or hd % hs:
        bad(f"small head_dim {hs} must divide big head_dim {hd}")


def rope_channels(hd: int, hd_s: int) -> torch.Tensor:
    """Big head channels whose RoPE frequency equals the small head's channels' (rotate_half layout)."""
    r = hd // hd_s
    half = torch.arange(hd_s // 2) * r
    return torch.cat([half, half + hd // 2])


def head_maps(big: ModelConfig, small: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(big query heads, big key/value heads) the small model keeps: the first ``KV_s`` key/value heads
    and, of each one's group, its first ``H_s/KV_s`` query heads (query head i reads kv head i // group)."""
    g, gs = big.num_attention_heads // big.num_key_value_heads, small.num_attention_heads // small.num_key_value_heads
    kv = torch.arange(small.num_key_value_heads)
    return (kv[:, None] * g + torch.arange(gs)[None, :]).reshape(-1), kv


def copy_head_extras(a, sa, big: ModelConfig, qh, kvh, qk, vch) -> None:
    """Qwen2's q/k/v biases and Qwen3's per-head q/k norms for the kept heads (``qh``, ``kvh``) and channels
    (``qk``: query/key, ``vch``: value) of small attention ``a`` from big attention ``sa``."""
    H, KV, HD = big.num_attention_heads, big.num_key_value_heads, big.resolved_head_dim
    if big.family.qkv_bias:
        a.q_proj.bias.copy_(sa.q_proj.bias.view(H, HD)[qh][:, qk].reshape(-1))
        a.k_proj.bias.copy_(sa.k_proj.bias.view(KV, HD)[kvh][:, qk].reshape(-1))
        a.v_proj.bias.copy_(sa.v_proj.bias.view(KV, HD)[kvh][:, vch].reshape(-1))
    if big.family.qk_norm:
        a.q_norm.weight.copy_(sa.q_norm.weight[qk])
        a.k_norm.weight.copy_(sa.k_norm.weight[qk])


def layer_segments(L: int, L_s: int) -> list[list[int]]:
    """Big layers belonging to each small layer (contiguous, as equal as possible)."""
    bounds = [round(j * L / L_s) for j in range(L_s + 1)]
    return [list(range(bounds[j], bounds[j + 1])) for j in range(L_s)]


@torch.no_grad()
def truncate_model(big: torch.nn.Module, small_cfg: ModelConfig) -> torch.nn.Module:
    """A small CausalLM whose weights are slices of ``big``'s (first layers, first channels)."""
    bc = big.config
    check_projectable(bc, small_cfg)
    d, p, hd = small_cfg.hidden_size, small_cfg.intermediate_size, small_cfg.resolved_head_dim
    H, KV, HD = bc.num_attention_heads, bc.num_key_value_heads, bc.resolved_head_dim
    qk = rope_channels(HD, hd)
    qh, kvh = head_maps(bc, small_cfg)
    small = build_model(small_cfg, seed=0)
    sb, bb = small.model, big.model
    sb.embed_tokens.weight.copy_(bb.embed_tokens.weight[:, :d])
    sb.norm.weight.copy_(bb.norm.weight[:d])
    if not small_cfg.tie_word_embeddings:
        small.lm_head.weight.copy_(big.lm_head.weight[:, :d])
    for j, layer in enumerate(sb.layers):
        src = bb.layers[j]
        layer.input_layernorm.weight.copy_(src.input_layernorm.weight[:d])
        layer.post_attention_layernorm.weight.copy_(src.post_attention_layernorm.weight[:d])
        a, sa = layer.self_attn, src.self_attn
        a.q_proj.weight.copy_(sa.q_proj.weight.view(H, HD, -1)[qh][:, qk, :d].reshape(-1, d))
        a.k_proj.weight.copy_(sa.k_proj.weight.view(KV, HD, -1)[kvh][:, qk, :d].reshape(-1, d))
        a.v_proj.weight.copy_(sa.v_proj.weight.view(KV, HD, -1)[kvh][:, :hd, :d].reshape(-1, d))
        a.o_proj.weight.copy_(sa.o_proj.weight.view(-1, H, HD)[:d, qh, :hd].reshape(d, -1))
        copy_head_extras(a, sa, bc, qh, kvh, qk, torch.arange(hd))
        m, sm = layer.mlp, src.mlp
        m.gate_proj.weight.copy_(sm.gate_proj.weight[:p, :d])
        m.up_proj.weight.copy_(sm.up_proj.weight[:p, :d])
        m.down_proj.weight.copy_(sm.down_proj.weight[:d, :p])
    return small.eval()
