"""The programs an artifact holds, with their I/O contract (see docs/exporters.md).

    python -c "from exporters.programs import programs_for; help(programs_for)"

Classifiers and image models: one ``forward`` program,
``input_ids`` int64 (B, T) -> ``logits`` float32 (B, num_labels).

Language models, single forward: ``forward``, ``input_ids`` int64 (B, T) -> ``logits``
float32 (B, T, vocab) (a whole-sequence scorer, e.g. for benchmarks). Language-model *tasks*
export LM programs instead, with the KV cache kept between calls (exporters/llm, docs/lm-programs.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .base import TensorSpec


@dataclass(frozen=True)
class Program:
    name: str
    module: object  # torch.nn.Module
    example: tuple  # example input tensors
    inputs: list  # [TensorSpec]
    outputs: list  # [TensorSpec]
    dynamic: dict | None = None  # torch.export dynamic_shapes (ONNX forward only)
    source: Path | None = None  # the checkpoint directory the module was loaded from
    kind: str = "cls"  # "lm" | "cls"

    def spec(self) -> dict:
        return {"inputs": self.inputs, "outputs": self.outputs}


def forward_program(model, kind: str, seq_len: int, example_ids, num_out: int, dynamic: bool = False) -> Program:
    import torch

    ids = torch.as_tensor(example_ids[: 2 if dynamic else 1, :seq_len], dtype=torch.int64)
    if dynamic:
        from torch.export import Dim

        dyn = {"input_ids": {0: Dim("batch", min=1, max=1024)}}
        b, t = "batch", seq_len
        if kind == "lm":
            dyn["input_ids"][1] = Dim("seq", min=2, max=seq_len)
            t = "seq"
    else:
        dyn, b, t = None, 1, seq_len
    out = (b, num_out) if kind == "cls" else (b, t, num_out)
    return Program(
        "forward",
        model,
        (ids,),
        [TensorSpec("input_ids", (b, t), "int64")],
        [TensorSpec("logits", out, "float32")],
        dyn,
    )


def programs_for(src, task, dynamic: bool = False) -> list[Program]:
    """The programs to export for a loaded source on a task (see the module docstring)."""
    ex = task.example_inputs(batch=2)
    cfg = src.hf_config
    if src.kind == "cls":
        from .hf_models import num_labels

        progs = [forward_program(src.model, "cls", task.seq_len, ex, num_labels(cfg), dynamic)]
    else:
        progs = [forward_program(src.model, "lm", task.seq_len, ex, int(cfg["vocab_size"]), dynamic)]
    return [replace(p, source=src.path, kind=src.kind) for p in progs]
