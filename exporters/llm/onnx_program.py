"""ONNX LM program: one decoder graph with the KV cache as I/O, run through ONNX Runtime's IO binding.

    python -m exporters.llm.onnx_program --checkpoint runs/lm --out out/lm-onnx

The graph is Optimum's ``text-generation-with-past`` export of the checkpoint (the library that
already does it): inputs ``input_ids`` (1, T), ``attention_mask`` (1, past + T), ``position_ids``
(1, T) and ``past_key_values.<i>.key/value`` (1, kv_heads, past, head_dim); outputs ``logits``
(1, T, vocab) and ``present.<i>.key/value`` (1, kv_heads, past + T, head_dim). Prefill is the call
with past = 0 (a prompt of n tokens costs n positions); decode is the call with T = 1.

:class:`ORTLMRunner` keeps the cache in ONNX Runtime: each call binds the previous call's
``present`` OrtValues as the next ``past`` inputs and lets ORT allocate the new ones, so the cache
never passes through numpy (only the last token's logits are copied out, for sampling).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

MAIN_FILE = "model.onnx"


def export_onnx_lm(checkpoint_dir, out_dir, opset: int | None = None) -> Path:
    """Optimum's decoder-with-past export of ``checkpoint_dir`` into ``out_dir/model.onnx``."""
    from optimum.exporters.onnx import main_export

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="optimum-", dir=out.parent))
    try:
        main_export(
            str(checkpoint_dir),
            output=str(tmp),
            task="text-generation-with-past",
            no_post_process=True,
            local_files_only=True,
            do_validation=False,
            opset=opset,
        )
        for f in tmp.glob("model.onnx*"):
            shutil.move(str(f), str(out / f.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / MAIN_FILE


class ORTLMRunner:
    """``prefill(prompt)`` / ``forward(tokens)`` -> last logits; the cache stays in ORT (IO binding)."""

    def __init__(self, path, threads: int = 1, max_seq_len: int | None = None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.path = Path(path)
        self.sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        ins = {i.name: i for i in self.sess.get_inputs()}
        self.past_names = [n for n in ins if n.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        self.kv_shape = ins[self.past_names[0]].shape  # (batch, kv_heads, past, head_dim)
        self.max_seq_len = max_seq_len
        self.pos = 0
        self.past = None

    def _empty_past(self):
        import onnxruntime as ort

        _, heads, _, hd = self.kv_shape
        zero = np.zeros((1, int(heads), 0, int(hd)), np.float32)
        return [ort.OrtValue.ortvalue_from_numpy(zero) for _ in self.past_names]

    def reset(self) -> None:
        self.pos, self.past = 0, None

    def forward(self, tokens) -> np.ndarray:
        from .runner import ContextWindowError

        ids = np.asarray(tokens, np.int64).reshape(1, -1)
        T = ids.shape[1]
        if self.max_seq_len is not None and self.pos + T > self.max_seq_len:
            raise ContextWindowError(f"{self.path}: positions past the window of {self.max_seq_len} tokens")
        b = self.sess.io_binding()
        b.bind_cpu_input("input_ids", ids)
        b.bind_cpu_input("attention_mask", np.ones((1, self.pos + T), np.int64))
        b.bind_cpu_input("position_ids", np.arange(self.pos, self.pos + T, dtype=np.int64)[None])
        for name, value in zip(self.past_names, self.past or self._empty_past()):
            b.bind_ortvalue_input(name, value)
        b.bind_output("logits")
        for name in self.present_names:
            b.bind_output(name)
        self.sess.run_with_iobinding(b)
        outs = b.get_outputs()  # OrtValues, in bind order
        self.past = outs[1:]
        self.pos += T
        return outs[0].numpy()[0, -1].copy()

    def prefill(self, prompt) -> np.ndarray:
        self.reset()
        return self.forward(prompt)

    def run(self, program: str, inputs: list) -> list:
        """The Runner protocol: ``run("forward", [tokens (1, T), input_pos (1,)]) -> [logits (1, vocab)]``.
        The cache lives in ORT, so ``input_pos`` is 0 (a new sequence) or the next position."""
        from ..base import ExportError

        if program != "forward":
            raise ExportError(f"{self.path}: unknown program {program!r}; programs: forward")
        pos = int(np.asarray(inputs[1]).reshape(-1)[0])
        if pos == 0:
            self.reset()
        elif pos != self.pos:
            raise ExportError(
                f"{self.path}: input_pos {pos}: the cache holds positions 0..{self.pos - 1}; give 0 or {self.pos}"
            )
        return [self.forward(inputs[0])[None]]

    def generate(self, prompt, max_new_tokens: int) -> list[int]:
        logits, out = self.prefill(prompt), []
        for _ in range(max_new_tokens):
            out.append(int(np.argmax(logits)))
            if len(out) < max_new_tokens:
                logits = self.forward([out[-1]])
        return out


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    print(export_onnx_lm(a.checkpoint, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
