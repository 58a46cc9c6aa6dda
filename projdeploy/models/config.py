"""Frozen configuration of the small Llama-style transformer.

Field names follow Hugging Face's ``LlamaConfig`` so that ``config.json`` is
read by ``transformers`` as it is, and our own module reads the same file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class Family:
    """A Hugging Face decoder family our Llama module computes exactly: its class prefix and what differs."""

    model_type: str
    prefix: str  # HF class prefix: <prefix>ForCausalLM / <prefix>ForSequenceClassification
    qkv_bias: bool = False  # Qwen2: biases on q/k/v (not o)
    qk_norm: bool = False  # Qwen3: RMSNorm over each head's query/key channels before RoPE


FAMILIES = {
    f.model_type: f
    for f in (Family("llama", "Llama"), Family("qwen2", "Qwen2", qkv_bias=True), Family("qwen3", "Qwen3", qk_norm=True))
}


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int | None = None
    max_position_embeddings: int = 128
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    # 0 -> causal LM head; >0 -> sequence-classification head with that many labels.
    num_labels: int = 0
    id2label: dict = field(default_factory=dict, hash=False, compare=True)
    model_type: str = "llama"  # a key of FAMILIES (written to config.json; qwen2/qwen3 as pretrained sources)

    def __post_init__(self):
        def bad(name, why):
            raise ConfigError("model config", name, why)

        if self.model_type not in FAMILIES:
            bad("model_type", f"{self.model_type!r}; allowed: {', '.join(FAMILIES)}")
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                bad(name, f"must be a positive integer, got {v!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            bad("num_key_value_heads", f"must divide num_attention_heads={self.num_attention_heads}")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            bad("num_attention_heads", f"must divide hidden_size={self.hidden_size} (or set head_dim)")
        if self.resolved_head_dim % 2:
            bad("head_dim", "must be even (RoPE rotates channel pairs)")
        if self.num_labels < 0:
            bad("num_labels", "must be >= 0 (0 = causal LM)")

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    @property
    def is_classifier(self) -> bool:
        return self.num_labels > 0

    @property
    def family(self) -> Family:
        return FAMILIES[self.model_type]

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def num_parameters(self) -> int:
        d, p, L = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        hd, H, KV = self.resolved_head_dim, self.num_attention_heads, self.num_key_value_heads
        attn = d * H * hd * 2 + d * KV * hd * 2
        attn += (H + 2 * KV) * hd * self.family.qkv_bias + 2 * hd * self.family.qk_norm
        block = attn + 3 * d * p + 2 * d
        head = d * (self.num_labels if self.is_classifier else self.vocab_size)
        tied = self.tie_word_embeddings and not self.is_classifier
        return self.vocab_size * d + L * block + d + (0 if tied else head)

    def flops_per_token(self, seq_len: int) -> int:
        """Forward FLOPs per token: 2 per weight MAC plus attention scores (causal average)."""
        d, L = self.hidden_size, self.num_hidden_layers
        hd, H, KV, p = (
            self.resolved_head_dim,
            self.num_attention_heads,
            self.num_key_value_heads,
            self.intermediate_size,
        )
        matmul = L * (d * H * hd * 2 + d * KV * hd * 2 + 3 * d * p)
        head = d * (self.num_labels if self.is_classifier else self.vocab_size)
        attn = L * H * hd * seq_len  # QK^T and AV, each ~ seq/2 keys on average (causal)
        return 2 * (matmul + head) + 2 * attn

    # --- Hugging Face config.json -------------------------------------------------
    def to_hf_dict(self) -> dict:
        head = "ForSequenceClassification" if self.is_classifier else "ForCausalLM"
        d = {
            "architectures": [self.family.prefix + head],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.resolved_head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "initializer_range": 0.02,
            "use_cache": True,
            "torch_dtype": "float32",
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }
        if self.is_classifier:
            labels = self.id2label or {i: f"LABEL_{i}" for i in range(self.num_labels)}
            d["id2label"] = {str(k): v for k, v in labels.items()}
            d["label2id"] = {v: int(k) for k, v in labels.items()}
            d["problem_type"] = "single_label_classification"
        return d

    @classmethod
    def from_hf_dict(cls, d: dict, source: str = "config.json") -> ModelConfig:
        from .weights import check_config_dict, check_size

        if not isinstance(d, dict):
            raise ConfigError(source, "<document>", f"must be a JSON object, got {type(d).__name__}")
        if d.get("model_type") not in FAMILIES:
            raise CheckpointError(
                f"{source}: model_type {d.get('model_type')!r} is not supported here; "
                f"projdeploy small models are {', '.join(map(repr, FAMILIES))}"
            )
        check_config_dict(d, source)
        if d.get("hidden_act", "silu") != "silu" or d.get("attention_bias") or d.get("mlp_bias"):
            raise CheckpointError(
                f"{source}: only silu activations without attention_bias / mlp_bias are supported "
                "(Qwen2's built-in q/k/v biases are)"
            )
        if d.get("rope_scaling"):
            raise CheckpointError(f"{source}: rope_scaling is not supported")
        if d.get("use_sliding_window"):
            raise CheckpointError(f"{source}: field 'use_sliding_window': sliding-window attention is not supported")
        archs = d.get("architectures") or []
        is_cls = any("SequenceClassification" in a for a in archs)
        id2label = {int(k): v for k, v in (d.get("id2label") or {}).items()} if is_cls else {}
        if is_cls and not id2label:  # transformers omits the default labels (2, LABEL_i) from config.json
            id2label = {i: f"LABEL_{i}" for i in range(int(d.get("num_labels") or 2))}
        kw = {
            f.name: d[f.name]
            for f in dataclasses.fields(cls)
            if f.name in d and f.name not in ("num_labels", "id2label", "model_type")
        }
        try:
            cfg = cls(**kw, num_labels=len(id2label) if is_cls else 0, id2label=id2label, model_type=d["model_type"])
        except ConfigError as e:
            raise ConfigError(source, e.field, e.problem) from None
        check_size(cfg.num_parameters(), source)
        return cfg

    def save(self, directory: str | Path) -> None:
        Path(directory, "config.json").write_text(json.dumps(self.to_hf_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> ModelConfig:
        path = Path(directory, "config.json")
        if not path.is_file():
            raise CheckpointError(f"{directory}: not a checkpoint (no config.json)")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: not valid JSON ({e})") from None
        return cls.from_hf_dict(d, str(path))


# Named sizes: one place to derive model shape from a preset name.
SIZES = {
    "tiny": dict(
        hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "small": dict(
        hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2
    ),
    "base": dict(
        hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4
    ),
}


def config_for(size: str, vocab_size: int, **extra) -> ModelConfig:
    from ..errors import UnknownNameError

    if size not in SIZES:
        raise UnknownNameError("size", size, SIZES)
    return ModelConfig(vocab_size=vocab_size, **{**SIZES[size], **extra})
