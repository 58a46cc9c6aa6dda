"""The architecture facts of a decoder-only Hugging Face config, validated for the LM programs.

    python -c "from exporters.llm.spec import lm_spec_from_dir; print(lm_spec_from_dir('runs/lm', 256))"

Supported: ``LlamaForCausalLM`` (SmolLM2, projdeploy's own Llama checkpoints), ``Qwen2ForCausalLM``
(q/k/v biases) and ``Qwen3ForCausalLM`` (q/k RMSNorm before RoPE). Anything the ExecuTorch Llama
transformer would compute differently (RoPE scaling, MLP or output biases, another activation,
sliding windows) is refused with a ``CheckpointError`` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")


def _err(path, field: str, problem: str):
    from projdeploy.errors import CheckpointError

    return CheckpointError(f"{path}/config.json: field {field!r}: {problem}")


@dataclass(frozen=True)
class LMSpec:
    architecture: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    max_seq_len: int  # the window: prompt + generated tokens
    qkv_bias: bool = False
    qk_norm: bool = False
    tied_embeddings: bool = True
    bos_id: int = 0
    eos_ids: tuple = (0,)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eos_ids"] = list(self.eos_ids)
        return d

    @property
    def kv_cache_bytes(self) -> int:
        """fp32 K and V caches of every layer over the window."""
        return 2 * self.n_layers * self.n_kv_heads * self.max_seq_len * self.head_dim * 4


def _ids(v) -> tuple:
    if v is None:
        return ()
    return tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else [v]))


def _check_supported(path, hf: dict, arch: str) -> None:
    scaling = hf.get("rope_scaling")
    if scaling and (scaling.get("rope_type") or scaling.get("type")) not in (None, "default"):
        raise _err(path, "rope_scaling", f"{scaling!r} is not supported by the LM program (only unscaled RoPE)")
    if hf.get("mlp_bias"):
        raise _err(path, "mlp_bias", "true is not supported (ExecuTorch's Llama feed-forward has no biases)")
    if arch == "LlamaForCausalLM" and hf.get("attention_bias"):
        raise _err(path, "attention_bias", "true is not supported for LlamaForCausalLM")
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise _err(path, "hidden_act", f"{act!r}; supported: 'silu'")
    if hf.get("use_sliding_window") and hf.get("sliding_window"):
        raise _err(path, "use_sliding_window", "sliding-window attention is not supported")


def lm_spec(hf: dict, max_seq_len: int, path: str | Path = "<config>") -> LMSpec:
    """``LMSpec`` from a Hugging Face config dict, with a window of ``max_seq_len`` positions."""
    archs = hf.get("architectures") or []
    arch = next((a for a in archs if a in ARCHITECTURES), None)
    if arch is None:
        from projdeploy.errors import CheckpointError

        raise CheckpointError(
            f"{path}/config.json: architecture {archs or hf.get('model_type')!r} has no LM program; "
            f"supported: {', '.join(ARCHITECTURES)}"
        )
    _check_supported(path, hf, arch)
    limit = int(hf.get("max_position_embeddings") or max_seq_len)
    if not 2 <= max_seq_len <= limit:
        raise _err(path, "max_position_embeddings", f"{limit}: the window max_seq_len={max_seq_len} must be 2..{limit}")
    heads = int(hf["num_attention_heads"])
    eos = _ids(hf.get("eos_token_id"))
    bos = _ids(hf.get("bos_token_id"))
    return LMSpec(
        architecture=arch,
        vocab_size=int(hf["vocab_size"]),
        dim=int(hf["hidden_size"]),
        n_layers=int(hf["num_hidden_layers"]),
        n_heads=heads,
        n_kv_heads=int(hf.get("num_key_value_heads") or heads),
        head_dim=int(hf.get("head_dim") or int(hf["hidden_size"]) // heads),
        hidden_dim=int(hf["intermediate_size"]),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        rope_theta=float(hf.get("rope_theta", 10000.0)),
        max_seq_len=int(max_seq_len),
        qkv_bias=arch == "Qwen2ForCausalLM" or bool(hf.get("attention_bias")),
        qk_norm=arch == "Qwen3ForCausalLM",
        tied_embeddings=bool(hf.get("tie_word_embeddings", True)),
        bos_id=bos[0] if bos else 0,
        eos_ids=eos or (bos[:1] if bos else (0,)),
    )


def lm_spec_from_dir(checkpoint_dir: str | Path, max_seq_len: int) -> LMSpec:
    path = Path(checkpoint_dir)
    cfg = path / "config.json"
    if not cfg.is_file():
        from projdeploy.errors import CheckpointError

        raise CheckpointError(f"{path}: not a checkpoint (no config.json)")
    return lm_spec(json.loads(cfg.read_text()), max_seq_len, path)
