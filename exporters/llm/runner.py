"""Host runner for an LM program (.pte with the KV cache inside): prefill, decode, greedy generation.

    python -c "from exporters.llm.runner import LMRunner; r = LMRunner('out/lm-et/model.pte'); print(r.metadata)"

The program keeps its caches between calls, so the runner only tracks the next position. A
prompt of n tokens is one call with T = n; each new token is one call with T = 1. Asking for a
position past the window (``get_max_seq_len``) raises :class:`ContextWindowError` before the
program runs (ExecuTorch's own check would abort the call with an opaque error code).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from projdeploy.errors import ProjdeployError

METADATA_METHODS = (
    "get_max_seq_len",
    "get_max_context_len",
    "get_vocab_size",
    "get_n_layers",
    "get_bos_id",
    "get_eos_ids",
    "use_kv_cache",
    "use_sdpa_with_kv_cache",
    "enable_dynamic_shape",
)


class ContextWindowError(ProjdeployError, ValueError):
    """A prefill or decode that would write past the program's KV-cache window."""


def set_threads(n: int | None) -> None:
    """XNNPACK's thread pool size in this process (None: leave ExecuTorch's default)."""
    if n:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(int(n))


class LMRunner:
    """``forward(tokens, input_pos) -> logits (vocab,)`` of the last token, with position tracking."""

    def __init__(self, pte_path: str | Path, threads: int | None = None):
        import executorch.extension.llm.custom_ops.custom_ops  # noqa: F401  (llama:: ops)
        import executorch.kernels.quantized  # noqa: F401  (quantized embedding kernels)
        from executorch.runtime import Runtime

        set_threads(threads)
        self.path = Path(pte_path)
        self.program = Runtime.get().load_program(str(self.path))
        self.metadata = self.read_metadata()
        self.max_seq_len = int(self.metadata["get_max_seq_len"])
        self.eos_ids = set(self.metadata.get("get_eos_ids", []))
        self.forward_method = self.program.load_method("forward")
        self.pos = 0

    def read_metadata(self) -> dict:
        out = {}
        names = set(self.program.method_names)
        for name in METADATA_METHODS:
            if name in names:
                vals = list(self.program.load_method(name).execute([]))
                out[name] = vals if name == "get_eos_ids" else vals[0]
        return out

    def reset(self) -> None:
        """Start a new sequence (old cache rows are overwritten before they are read)."""
        self.pos = 0

    def forward(self, tokens) -> np.ndarray:
        import torch

        ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64).reshape(1, -1))
        n = int(ids.shape[1])
        if n < 1:
            raise ContextWindowError(f"{self.path}: empty token list")
        if self.pos + n > self.max_seq_len:
            raise ContextWindowError(
                f"{self.path}: positions {self.pos}..{self.pos + n - 1} are past the window of "
                f"{self.max_seq_len} tokens (get_max_seq_len); reset() or export with a larger max_seq_len"
            )
        (logits,) = self.forward_method.execute([ids, torch.tensor([self.pos], dtype=torch.long)])
        self.pos += n
        return logits.detach().numpy().reshape(-1).copy()

    def prefill(self, prompt) -> np.ndarray:
        self.reset()
        return self.forward(prompt)

    def run(self, program: str, inputs: list) -> list:
        """The Runner protocol: ``run("forward", [tokens (1, T), input_pos (1,)]) -> [logits (1, vocab)]``."""
        if program != "forward":
            from exporters.base import ExportError

            raise ExportError(f"{self.path}: unknown program {program!r}; programs: forward")
        self.pos = int(np.asarray(inputs[1]).reshape(-1)[0])
        return [self.forward(inputs[0])[None]]

    def generate(self, prompt, max_new_tokens: int, stop_at_eos: bool = False) -> list[int]:
        """Greedy tokens after ``prompt`` (at most ``max_new_tokens``; the window bounds it too)."""
        logits = self.prefill(prompt)
        out = []
        for _ in range(max_new_tokens):
            tok = int(np.argmax(logits))
            out.append(tok)
            if (stop_at_eos and tok in self.eos_ids) or len(out) == max_new_tokens:
                break
            logits = self.forward([tok])
        return out
