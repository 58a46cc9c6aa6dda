"""Hugging Face Llama-family checkpoint (Llama, SmolLM, Qwen2, Qwen3) -> projdeploy's own Llama module, exactly.

    python -c "from projdeploy.foundation.convert import llama_from_hf; print(llama_from_hf('hf_dir').config)"

Parameter names are Hugging Face's, so the state dict copies over unchanged;
the config goes through ``ModelConfig.from_hf_dict`` (which refuses what our
module cannot compute: biases, non-SiLU activations, RoPE scaling).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import CheckpointError


def hf_state_dict(path: Path, auto_class: str = "AutoModelForCausalLM") -> dict[str, torch.Tensor]:
    """Weights of an HF checkpoint directory, read from safetensors only (never pickle)."""
    import transformers

    cls = getattr(transformers, auto_class)
    if not any(Path(path).glob("*.safetensors")):
        raise CheckpointError(f"{path}: no *.safetensors weights (pickled .bin weights are never loaded)")
    try:
        model = cls.from_pretrained(str(path), dtype=torch.float32, use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: transformers could not load it ({e})") from None
    return {k: v.detach() for k, v in model.state_dict().items()}


def llama_from_hf(path: str | Path) -> torch.nn.Module:
    """A projdeploy CausalLM with the HF Llama-family checkpoint's weights."""
    from ..models.config import FAMILIES, ModelConfig
    from ..models.llama import build_model

    path = Path(path)
    d = json.loads((path / "config.json").read_text())
    fam = FAMILIES.get(d.get("model_type"), FAMILIES["llama"])
    d = {**d, "architectures": [fam.prefix + "ForCausalLM"]}  # the causal LM of a base or classifier checkpoint
    cfg = ModelConfig.from_hf_dict(d, str(path / "config.json"))
    model = build_model(cfg)
    sd = hf_state_dict(path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    unexpected = [k for k in unexpected if not k.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match a Llama model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model.eval()
