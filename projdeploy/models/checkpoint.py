"""Checkpoint directories: ``config.json`` + ``model.safetensors`` (+ tokenizer, + extras).

The directory loads in ``transformers`` with its Auto classes. Nothing is
ever loaded with pickle: weights are safetensors, metadata is JSON.

    python -c "from projdeploy.models.checkpoint import load_model; print(load_model('runs/tiny'))"
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..errors import CheckpointError
from .config import ModelConfig
from .llama import build_model
from .weights import load_weights, read_safetensors

WEIGHTS = "model.safetensors"
META = "projdeploy.json"


def state_dict_for_save(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous tensors; a tied ``lm_head.weight`` is dropped (HF re-ties it)."""
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    cfg = getattr(model, "config", None)
    if isinstance(cfg, ModelConfig) and cfg.tie_word_embeddings and "lm_head.weight" in sd:
        del sd["lm_head.weight"]
    return sd


def write_model_files(directory: str | Path, model: torch.nn.Module, meta: dict | None = None) -> None:
    """Write config.json, model.safetensors and projdeploy.json into an existing (temp) directory."""
    directory = Path(directory)
    own = getattr(model, "write_files", None)  # transformers encoders write themselves (models/encoder.py)
    if own is not None:
        own(directory)
    else:
        model.config.save(directory)
        save_file(state_dict_for_save(model), str(directory / WEIGHTS), metadata={"format": "pt"})
    (directory / META).write_text(json.dumps({"kind": "small", **(meta or {})}, indent=2, sort_keys=True))


def read_meta(directory: str | Path) -> dict:
    p = Path(directory, META)
    return json.loads(p.read_text()) if p.is_file() else {}


def load_state(directory: str | Path) -> dict[str, torch.Tensor]:
    p = Path(directory, WEIGHTS)
    if not p.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no {WEIGHTS})")
    return read_safetensors(p)


def load_model(directory: str | Path) -> torch.nn.Module:
    """Load a small checkpoint as projdeploy's own module (eval mode)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist")
    cfg = ModelConfig.load(directory)
    sd = load_state(directory)
    model = build_model(cfg)
    tied = ("lm_head.weight",) if cfg.tie_word_embeddings else ()
    load_weights(model, sd, f"{directory}/{WEIGHTS}", allow_missing=tied)
    return model.eval()
