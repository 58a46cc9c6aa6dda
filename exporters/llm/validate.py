"""Validation of an LM program against the float Hugging Face model, teacher-forced on real rows.

    python -c "from exporters.llm.validate import compare_rows; help(compare_rows)"

Each eval row is fed as the app would: prefill the first ``n_prompt`` tokens, then one token per
call; the logits at every position are compared with one full forward of the float model.
Figures: max |diff| and the reference scale (max |logit|), SQNR, top-1 (greedy token) agreement,
and the cross-entropy of the row's next tokens in bits per token (and per byte when the bytes per
row are known) for the float model and the artifact. Thresholds are the recipe's: float recipes a
relative error ``FLOAT_RTOL`` of the logit scale; quantized ones a top-1 agreement floor and,
when set, a bits-per-byte budget.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT_RTOL = 1e-4  # fp32 XNNPACK vs eager: ~1e-5 of the logit scale on a 30-layer model


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def reference_logits(hf_model, row: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return hf_model(torch.as_tensor(row[None], dtype=torch.long)).logits[0].float().numpy()


def artifact_logits(runner, row: np.ndarray, n_prompt: int) -> np.ndarray:
    """Logits at positions n_prompt-1 .. len(row)-2 (each predicts the next token of the row)."""
    out = [runner.prefill(row[:n_prompt].tolist())]
    for p in range(n_prompt, len(row) - 1):
        out.append(runner.forward([int(row[p])]))
    return np.stack(out)


class _Acc:
    def __init__(self):
        self.max_diff = self.scale = self.signal = self.noise = 0.0
        self.n = self.agree = 0
        self.nll_ref = self.nll_art = 0.0

    def add(self, ref: np.ndarray, art: np.ndarray, targets: np.ndarray) -> None:
        self.max_diff = max(self.max_diff, float(np.max(np.abs(ref - art))))
        self.scale = max(self.scale, float(np.max(np.abs(ref))))
        self.signal += float(np.sum(ref.astype(np.float64) ** 2))
        self.noise += float(np.sum((ref.astype(np.float64) - art) ** 2))
        self.agree += int(np.sum(ref.argmax(-1) == art.argmax(-1)))
        self.n += len(targets)
        idx = np.arange(len(targets))
        self.nll_ref -= float(_log_softmax(ref)[idx, targets].sum()) / math.log(2)
        self.nll_art -= float(_log_softmax(art)[idx, targets].sum()) / math.log(2)


def compare_rows(runner, hf_model, rows: np.ndarray, n_prompt: int, total_bytes: int | None = None) -> dict:
    """Teacher-forced comparison over ``rows`` (R, T) int64; the figures (no thresholds)."""
    acc = _Acc()
    for row in np.asarray(rows, np.int64):
        ref = reference_logits(hf_model, row)[n_prompt - 1 : len(row) - 1]
        acc.add(ref, artifact_logits(runner, row, n_prompt), row[n_prompt:])
    fig = {
        "rows": int(len(rows)),
        "positions": acc.n,
        "n_prompt": int(n_prompt),
        "max_abs_diff": acc.max_diff,
        "logit_scale": acc.scale,
        "rel_diff": acc.max_diff / max(acc.scale, 1e-30),
        "sqnr_db": 999.0 if acc.noise == 0 else 10 * math.log10(max(acc.signal, 1e-30) / acc.noise),
        "top1_agreement": acc.agree / max(acc.n, 1),
        "bits_per_token_float": acc.nll_ref / max(acc.n, 1),
        "bits_per_token": acc.nll_art / max(acc.n, 1),
    }
    if total_bytes:
        fig["bits_per_byte_float"] = acc.nll_ref / total_bytes
        fig["bits_per_byte"] = acc.nll_art / total_bytes
        fig["bits_per_byte_drop"] = fig["bits_per_byte"] - fig["bits_per_byte_float"]
    return fig


def check(fig: dict, recipe) -> list[str]:
    """The recipe's thresholds; the list of failures (empty = passed)."""
    failures = []
    if not recipe.quantized and fig["rel_diff"] > FLOAT_RTOL:
        failures.append(f"max |diff| {fig['max_abs_diff']:.3g} > {FLOAT_RTOL:g} x logit scale {fig['logit_scale']:.3g}")
    if fig["top1_agreement"] < recipe.min_top1_agreement:
        failures.append(f"top-1 agreement {fig['top1_agreement']:.3f} < {recipe.min_top1_agreement:g}")
    drop = fig.get("bits_per_byte_drop")
    if recipe.max_bpb_drop is not None and drop is not None and drop > recipe.max_bpb_drop:
        failures.append(f"bits/byte drop {drop:.4f} > {recipe.max_bpb_drop:g}")
    return failures
