"""Hugging Face architectures that export through ``transformers``, and the wrappers that give each the
``forward(input_ids) -> logits`` contract of exporters/programs.py.

    python -c "from exporters.hf_models import ARCHITECTURES; print(sorted(ARCHITECTURES))"

Text models take the task's token ids (attention mask all ones, as every row is full length).
Image classifiers (ViT) take the task's pixel tokens (levels 0..L-1, one per pixel, row-major) and
see them as a ``(1, H, W)`` image scaled to [0, 1] (repeated over ``num_channels``), so an image task's
artifact keeps the same ``input_ids`` I/O as every other classifier.

Classifier configs are read the way ``transformers`` writes them: ``save_pretrained`` omits
``id2label`` when it is the default, and the default is two labels (``LABEL_0``, ``LABEL_1``).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NUM_LABELS = 2  # transformers.PretrainedConfig's default (id2label is then not written)


@dataclass(frozen=True)
class HFArchitecture:
    name: str  # the class name in config.json "architectures"
    kind: str  # "lm" | "cls"
    inputs: str = "tokens"  # "tokens" | "image"


ARCHITECTURES = {
    a.name: a
    for a in [
        HFArchitecture("LlamaForCausalLM", "lm"),
        HFArchitecture("LlamaForSequenceClassification", "cls"),
        HFArchitecture("Qwen2ForCausalLM", "lm"),  # q/k/v biases (projdeploy's module computes them)
        HFArchitecture("Qwen3ForCausalLM", "lm"),  # per-head q/k RMSNorm
        HFArchitecture("GPT2LMHeadModel", "lm"),
        HFArchitecture("GPT2ForSequenceClassification", "cls"),
        HFArchitecture("BertForSequenceClassification", "cls"),  # BERT, MiniLM (a BERT config)
        HFArchitecture("DistilBertForSequenceClassification", "cls"),
        HFArchitecture("MobileBertForSequenceClassification", "cls"),
        HFArchitecture("ViTForImageClassification", "cls", inputs="image"),
    ]
}


def num_labels(hf_config: dict) -> int:
    """Labels of a classifier config.json as transformers reads it (id2label, else num_labels, else 2)."""
    if hf_config.get("id2label"):
        return len(hf_config["id2label"])
    return int(hf_config.get("num_labels") or DEFAULT_NUM_LABELS)


def wrap(hf_model, arch: HFArchitecture, task=None):
    """A torch module ``forward(input_ids int64 (B, T)) -> logits`` around a transformers model."""
    if arch.inputs == "image":
        return _image_wrapper(hf_model, task)
    return _token_wrapper(hf_model)


def _token_wrapper(hf_model):
    import inspect

    import torch

    class TokenLogits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.hf = m
            self.config = m.config
            self.extra = {"use_cache": False} if "use_cache" in inspect.signature(m.forward).parameters else {}

        def forward(self, input_ids):
            return self.hf(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), return_dict=True, **self.extra
            ).logits

    return TokenLogits(hf_model).eval()


def _image_wrapper(hf_model, task):
    import torch

    from .sources import _checkpoint_error

    if task is None or not task.image_shape:
        raise _checkpoint_error(f"{type(hf_model).__name__} needs an image task (pixel tokens with an image shape)")
    h, w = task.image_shape
    levels = int(getattr(task.tokenizer, "levels", 0))
    size = int(getattr(hf_model.config, "image_size", 0))
    if size != h or h != w:
        raise _checkpoint_error(f"config.json: image_size {size} does not match task {task.name!r}'s {h}x{w} images")
    if levels < 2:
        raise _checkpoint_error(f"task {task.name!r} has no pixel levels (tokenizer {task.tokenizer.kind!r})")

    class ImageLogits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.hf = m
            self.config = m.config
            self.channels = int(m.config.num_channels)

        def forward(self, input_ids):
            pixels = input_ids.to(torch.float32).view(input_ids.shape[0], 1, h, w) / float(levels - 1)
            return self.hf(pixel_values=pixels.expand(-1, self.channels, -1, -1), return_dict=True).logits

    return ImageLogits(hf_model).eval()
