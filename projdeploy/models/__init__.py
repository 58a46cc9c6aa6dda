"""Small Llama-style transformer with Hugging Face-compatible checkpoints."""

from .config import SIZES, ModelConfig, config_for
from .llama import CausalLM, SequenceClassifier, build_model

__all__ = ["SIZES", "ModelConfig", "config_for", "CausalLM", "SequenceClassifier", "build_model"]
