"""Llama-style decoder-only transformer: RMSNorm, SwiGLU, RoPE, GQA, tied embeddings.

Parameter names equal Hugging Face's ``LlamaForCausalLM`` /
``LlamaForSequenceClassification`` so a ``model.safetensors`` written from
this module loads in ``transformers`` unchanged (tested to 1e-5).

    python -c "from projdeploy.models import *; m = build_model(config_for('tiny', 19)); print(m)"
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype=torch.float32):
    """cos/sin tables (..., head_dim) for integer ``positions`` (HF "rotate_half" layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[..., None] * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    # Slices rather than chunk(): XNNPACK delegates static slices, not split_with_sizes.
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def causal_mask(T: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive (T, T) mask, -inf above the diagonal. Built once per forward and shared by every
    layer (``is_causal=True`` rebuilds it inside each layer of an exported graph)."""
    return torch.full((T, T), float("-inf"), device=device, dtype=dtype).triu(1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, T, hd); cos/sin: (T, hd) or (B, T, hd)
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hd = cfg.resolved_head_dim
        self.n_heads, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, hd
        bias = cfg.family.qkv_bias
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * hd, bias=bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * hd, bias=bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * hd, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * hd, cfg.hidden_size, bias=False)
        if cfg.family.qk_norm:  # Qwen3: per-head RMSNorm of queries and keys before RoPE
            self.q_norm = RMSNorm(hd, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(hd, cfg.rms_norm_eps)

    def project_qkv(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def attend(self, q, k, v, mask=None):
        """q: (B,H,T,hd); k,v: (B,KV,S,hd); mask: bool (T,S) of allowed positions, an additive float
        mask, or None (causal)."""
        rep = self.n_heads // self.n_kv
        if rep > 1:  # each KV head serves ``rep`` consecutive query heads (HF repeat_kv)
            B, KV, S, hd = k.shape
            k = k[:, :, None].expand(B, KV, rep, S, hd).reshape(B, KV * rep, S, hd)
            v = v[:, :, None].expand(B, KV, rep, S, hd).reshape(B, KV * rep, S, hd)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif mask.dtype.is_floating_point:
            # Written out (as HF's "eager" attention): exported, it stays a few delegatable ops,
            # where SDPA's decomposition adds fully-masked-row guards (any/where/logical_not) per layer.
            scores = torch.matmul(q * self.head_dim**-0.5, k.transpose(-2, -1)) + mask
            out = torch.matmul(torch.softmax(scores, dim=-1), v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        B, H, T, hd = out.shape
        return self.o_proj(out.transpose(1, 2).reshape(B, T, H * hd))

    def forward(self, x, cos, sin, mask=None):
        q, k, v = self.project_qkv(x, cos, sin)
        return self.attend(q, k, v, mask)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mlp=None, mask=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        return x + (mlp or self.mlp)(h)


class Backbone(nn.Module):
    """Embeddings + blocks + final norm (HF: ``LlamaModel``, prefix ``model.``)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def rope(self, T: int, device=None, offset: int = 0):
        pos = torch.arange(offset, offset + T, device=device)
        return rope_cos_sin(pos, self.cfg.resolved_head_dim, self.cfg.rope_theta)

    def forward(self, input_ids: torch.Tensor, mlps=None) -> torch.Tensor:
        """Final-normed hidden states (B, T, d). ``mlps``: optional per-layer MLP overrides."""
        x = self.embed_tokens(input_ids)
        cos, sin = self.rope(input_ids.shape[1], input_ids.device)
        mask = causal_mask(input_ids.shape[1], input_ids.device, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if mlps is None else mlps[i], mask=mask)
        return self.norm(x)


def _init_weights(module: nn.Module, std: float = 0.02) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)


class CausalLM(nn.Module):
    """Next-token model; ``forward(input_ids) -> logits (B, T, V)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.is_classifier:
            from ..errors import ConfigError

            raise ConfigError("model config", "num_labels", "a classifier config builds a SequenceClassifier")
        self.config = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        _init_weights(self)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (B, d): mean of final-normed hidden states."""
        return self.model(input_ids).mean(dim=1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.model(input_ids))


class SequenceClassifier(nn.Module):
    """Classifier; pools the last non-pad token like HF ``LlamaForSequenceClassification``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if not cfg.is_classifier:
            from ..errors import ConfigError

            raise ConfigError("model config", "num_labels", "a SequenceClassifier needs num_labels > 0")
        self.config = cfg
        self.model = Backbone(cfg)
        self.score = nn.Linear(cfg.hidden_size, cfg.num_labels, bias=False)
        _init_weights(self)

    def pool(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        pad = self.config.pad_token_id
        if pad is None:
            return hidden[:, -1]
        idx = torch.arange(input_ids.shape[1], device=input_ids.device)
        last = (idx * (input_ids != pad).long()).argmax(-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.pool(self.model(input_ids), input_ids)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(input_ids))


def build_model(cfg: ModelConfig, seed: int | None = None) -> nn.Module:
    if seed is not None:
        torch.manual_seed(seed)
    return SequenceClassifier(cfg) if cfg.is_classifier else CausalLM(cfg)
