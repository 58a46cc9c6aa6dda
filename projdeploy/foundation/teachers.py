"""GPT-2 and BERT-family models as frozen teachers: pooled features (AFT / KD) and, for GPT-2, next-token logits.

    python -c "from projdeploy.foundation.teachers import hf_teacher; t = hf_teacher('minilm_dir', 'bert')"

The wrapper exposes what projdeploy's teacher code reads: ``.config``
(``vocab_size``, ``hidden_size``, ``is_classifier``), ``.features(ids)``
(mean of the last hidden states over non-pad positions) and ``forward(ids)``
(LM logits; GPT-2 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError


@dataclass(frozen=True)
class TeacherConfig:
    vocab_size: int
    hidden_size: int
    pad_token_id: int | None
    family: str
    is_classifier: bool = False


class HFTeacher(nn.Module):
    def __init__(self, model: nn.Module, config: TeacherConfig):
        super().__init__()
        self.hf, self.config = model, config

    def _hidden(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = self.config.pad_token_id
        mask = (ids != pad).long() if pad is not None and self.config.family == "bert" else torch.ones_like(ids)
        out = self.hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[-1], mask

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        h, mask = self._hidden(ids)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.config.family != "gpt2":
            raise CheckpointError(f"a {self.config.family} teacher has no next-token logits (use it for aft/kd)")
        return self.hf(input_ids=ids).logits


def hf_teacher(path: str | Path, family: str) -> HFTeacher:
    import transformers

    cls = transformers.AutoModelForCausalLM if family == "gpt2" else transformers.AutoModel
    if not any(Path(path).glob("*.safetensors")):
        raise CheckpointError(f"{path}: no *.safetensors weights (pickled .bin weights are never loaded)")
    try:
        model = cls.from_pretrained(str(path), dtype=torch.float32, use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: transformers could not load it ({e})") from None
    c = model.config
    hidden = getattr(c, "hidden_size", None) or getattr(c, "dim", None) or c.n_embd
    cfg = TeacherConfig(c.vocab_size, int(hidden), getattr(c, "pad_token_id", None), family)
    return HFTeacher(model.eval(), cfg)
