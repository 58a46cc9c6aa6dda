"""A generalised Llama block for server-side growth: separate key/query and value head sizes, explicit RoPE frequencies.

    python -c "from projdeploy.models.general import *; from projdeploy.models import config_for; \
print(GeneralConfig.from_model_config(config_for('tiny', 19)))"

``transformers``' Llama ties q/k/v to one ``head_dim`` and derives RoPE
frequencies from it, so a model whose value size differs from its key size,
or whose grown heads keep their old channels' frequencies, cannot be a HF
checkpoint. ``GeneralLM`` can; parameter names equal HF Llama, and
``to_model_config()`` converts back whenever the layout is expressible.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .config import ModelConfig
from .llama import RMSNorm, rotate_half

KIND = "general"


def standard_inv_freq(head_dim: int, theta: float) -> tuple[float, ...]:
    return tuple((1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))).tolist())


@dataclass(frozen=True)
class GeneralConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    qk_head_dim: int
    v_head_dim: int
    rope_inv_freq: tuple = ()  # qk_head_dim / 2 frequencies (rotate-half pairs (j, j + qk/2))
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 128
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    version: int = 1

    def __post_init__(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                "general config", "num_key_value_heads", f"must divide num_attention_heads={self.num_attention_heads}"
            )
        if self.qk_head_dim % 2:
            raise ConfigError("general config", "qk_head_dim", "must be even (RoPE rotates channel pairs)")
        if not self.rope_inv_freq:
            object.__setattr__(self, "rope_inv_freq", standard_inv_freq(self.qk_head_dim, self.rope_theta))
        object.__setattr__(self, "rope_inv_freq", tuple(float(f) for f in self.rope_inv_freq))
        if len(self.rope_inv_freq) * 2 != self.qk_head_dim:
            raise ConfigError(
                "general config", "rope_inv_freq", f"needs qk_head_dim/2 = {self.qk_head_dim // 2} entries"
            )

    def replace(self, **kw) -> GeneralConfig:
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_model_config(cls, c: ModelConfig) -> GeneralConfig:
        if c.is_classifier or c.tie_word_embeddings:
            raise ConfigError(
                "grow", "config", "growth supports untied causal LMs (classifier or tied embeddings given)"
            )
        hd = c.resolved_head_dim
        return cls(
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.num_key_value_heads,
            hd,
            hd,
            (),
            c.rope_theta,
            c.rms_norm_eps,
            c.max_position_embeddings,
            c.bos_token_id,
            c.eos_token_id,
            c.pad_token_id,
        )

    def hf_incompatibility(self) -> str | None:
        """Why this layout is not a HF Llama config (None when it is)."""
        if self.qk_head_dim != self.v_head_dim:
            return f"key/query head size {self.qk_head_dim} differs from value head size {self.v_head_dim}"
        if self.rope_inv_freq != standard_inv_freq(self.qk_head_dim, self.rope_theta):
            return "RoPE frequencies were kept from a smaller head size (not derivable from rope_theta)"
        return None

    def to_model_config(self) -> ModelConfig:
        why = self.hf_incompatibility()
        if why:
            raise ConfigError("general config", "layout", f"not expressible as a HF Llama checkpoint: {why}")
        return ModelConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.qk_head_dim,
            max_position_embeddings=self.max_position_embeddings,
            rope_theta=self.rope_theta,
            rms_norm_eps=self.rms_norm_eps,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
        )

    def to_dict(self) -> dict:
        return {"projdeploy_kind": KIND, **dataclasses.asdict(self), "rope_inv_freq": list(self.rope_inv_freq)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> GeneralConfig:
        if d.get("projdeploy_kind") != KIND:
            raise CheckpointError(f"{source}: not a general-block config")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def flops_per_token(self, seq_len: int) -> int:
        d, L, H, KV = self.hidden_size, self.num_hidden_layers, self.num_attention_heads, self.num_key_value_heads
        qk, v, p = self.qk_head_dim, self.v_head_dim, self.intermediate_size
        matmul = L * (d * H * qk + d * KV * qk + d * KV * v + H * v * d + 3 * d * p) + d * self.vocab_size
        return 2 * matmul + L * H * (qk + v) * seq_len


class GAttention(nn.Module):
    def __init__(self, c: GeneralConfig):
        super().__init__()
        self.c = c
        d, H, KV = c.hidden_size, c.num_attention_heads, c.num_key_value_heads
        self.q_proj = nn.Linear(d, H * c.qk_head_dim, bias=False)
        self.k_proj = nn.Linear(d, KV * c.qk_head_dim, bias=False)
        self.v_proj = nn.Linear(d, KV * c.v_head_dim, bias=False)
        self.o_proj = nn.Linear(H * c.v_head_dim, d, bias=False)

    def forward(self, x, cos, sin):
        c, (B, T, _) = self.c, x.shape
        H, KV = c.num_attention_heads, c.num_key_value_heads
        q = self.q_proj(x).view(B, T, H, c.qk_head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, KV, c.qk_head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, KV, c.v_head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if H != KV:
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.qk_head_dim)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        out = att.softmax(-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, H * c.v_head_dim))


class GMLP(nn.Module):
    def __init__(self, c: GeneralConfig):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class GBlock(nn.Module):
    def __init__(self, c: GeneralConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = GAttention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = GMLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class GBackbone(nn.Module):
    def __init__(self, c: GeneralConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(GBlock(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class GeneralLM(nn.Module):
    """``forward(ids) -> logits``; state dict names equal HF ``LlamaForCausalLM``."""

    def __init__(self, c: GeneralConfig):
        super().__init__()
        self.config = c
        self.model = GBackbone(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
        self.register_buffer("inv_freq", torch.tensor(c.rope_inv_freq, dtype=torch.float32), persistent=False)

    def forward(self, input_ids):
        T = input_ids.shape[1]
        freqs = torch.arange(T, device=input_ids.device).float()[:, None] * self.inv_freq
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.model.norm(x))


def write_general_files(directory: str | Path, model: GeneralLM, meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    directory = Path(directory)
    (directory / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2, sort_keys=True))
    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()},
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (directory / "projdeploy.json").write_text(json.dumps({"kind": KIND, **(meta or {})}, indent=2, sort_keys=True))


def load_any_lm(directory: str | Path) -> tuple[GeneralLM, dict]:
    """A small/dense (HF Llama) or general checkpoint as a ``GeneralLM`` (+ its optimizer tensors if present)."""
    from .weights import load_weights, read_safetensors

    directory = Path(directory)
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no config.json)")
    try:
        d = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: must be a JSON object")
    if d.get("projdeploy_kind") == "pn":
        raise CheckpointError(
            f"{directory}: a Projected Network checkpoint cannot be grown directly; grow a dense "
            "checkpoint, or project an expert first (projdeploy.project.pn.project_pn)"
        )
    cfg = (
        GeneralConfig.from_dict(d, str(path))
        if d.get("projdeploy_kind") == KIND
        else GeneralConfig.from_model_config(ModelConfig.from_hf_dict(d, str(path)))
    )
    sd = read_safetensors(directory / "model.safetensors")
    model = GeneralLM(cfg)
    load_weights(model, sd, str(directory / "model.safetensors"))
    opt = directory / "optimizer.safetensors"
    return model.eval(), (read_safetensors(opt) if opt.is_file() else {})
