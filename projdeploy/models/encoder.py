"""Hugging Face encoder classifiers (BERT, MiniLM, DistilBERT, MobileBERT) as fine-tunable small models.

    python -c "from projdeploy.models.encoder import load_encoder_classifier; help(load_encoder_classifier)"

``projdeploy project --big minilm-l6 --method prune`` writes a smaller ``transformers``
``BertForSequenceClassification`` directory, not one of projdeploy's own Llama-family modules. Such a
checkpoint is fine-tuned as it is: ``transformers`` builds the module from the directory (safetensors only),
:class:`EncoderClassifier` gives it the contract the fine-tuning loop uses (``forward(ids) -> logits`` and
``logits_and_features``), and the result is written back with ``save_pretrained`` so that it loads in
``transformers`` and exports like any other Hugging Face classifier (``exporters/hf_models.py``).

The attention mask is all ones, exactly as the exported program computes it (``exporters/hf_models.py``:
the artifact's only input is ``input_ids``), so what is trained is what runs on the device.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError

# config.json model_type of the encoders fine-tuned through transformers (classification only); transformers'
# AutoModelForSequenceClassification picks the class (a bare encoder such as MiniLM's BertModel gets a fresh head)
ENCODER_MODEL_TYPES = ("bert", "distilbert", "mobilebert")


def encoder_config(directory: str | Path) -> dict | None:
    """The config.json of an encoder checkpoint directory, or None when it is not one."""
    cfg = Path(directory, "config.json")
    if not cfg.is_file():
        return None
    try:
        d = json.loads(cfg.read_text())
    except json.JSONDecodeError:
        return None
    return d if isinstance(d, dict) and d.get("model_type") in ENCODER_MODEL_TYPES else None


class EncoderClassifier(nn.Module):
    """A transformers sequence classifier behind projdeploy's classifier contract."""

    # fine-tuning a pretrained encoder: projdeploy's default of 3e-3 (small models trained from a projection)
    # leaves a pruned MiniLM at chance on pycode-cls; 1e-4 is in the range BERT fine-tuning uses
    default_lr = 1e-4

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf
        self.config = hf.config

    def _run(self, ids: torch.Tensor):
        return self.hf(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True, return_dict=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self._run(ids).logits

    def logits_and_features(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, features): features are the last hidden states averaged over positions (any architecture)."""
        out = self._run(ids)
        return out.logits, out.hidden_states[-1].mean(dim=1)

    def write_files(self, directory: str | Path) -> None:
        """config.json + model.safetensors as transformers writes them (never pickle)."""
        self.hf.save_pretrained(str(directory), safe_serialization=True)


def load_encoder_classifier(directory: str | Path, task, seed: int = 0) -> EncoderClassifier:
    """The checkpoint as a classifier of ``task``'s labels; a fresh (seeded) head when the label count differs."""
    import transformers

    directory = Path(directory)
    cfg = encoder_config(directory)
    if cfg is None:
        raise CheckpointError(
            f"{directory}/config.json: not an encoder checkpoint (model_type {', '.join(ENCODER_MODEL_TYPES)})"
        )
    if task.kind != "cls":
        raise CheckpointError(
            f"{directory}/config.json: a {cfg['model_type']} checkpoint serves classification tasks only; task "
            f"{task.name!r} is of kind {task.kind!r}"
        )
    if not any(directory.glob("*.safetensors")):
        raise CheckpointError(f"{directory}: no *.safetensors weights (pickled weights are never loaded)")
    vocab = cfg.get("vocab_size", 0)
    if vocab < task.tokenizer.vocab_size:
        raise CheckpointError(
            f"{directory}/config.json: vocab_size {vocab} is smaller than task {task.name!r}'s tokenizer "
            f"({task.tokenizer.vocab_size})"
        )
    labels = dict(enumerate(task.labels))
    torch.manual_seed(seed)  # the fresh head, if any
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(directory),
        num_labels=task.num_labels,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        ignore_mismatched_sizes=True,
        use_safetensors=True,
        local_files_only=True,
        attn_implementation="eager",
    )
    return EncoderClassifier(hf.float())
