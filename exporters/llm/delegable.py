"""Source transforms that keep RMSNorm and RoPE inside XNNPACK partitions.

    python -c "from exporters.llm.delegable import make_delegable; help(make_delegable)"

XNNPACK takes ``mean.dim`` only over the inner dims of 4-D tensors, and the rotate-half RoPE of
Hugging Face (slices + ``cat`` with an empty pass-through part) on a dynamic token dimension is
refused too; each refusal splits a layer's delegate into pieces (14 partitions per layer before,
measured) and every piece costs a round trip at run time and a pass pipeline at export time.
Same numbers, delegable ops:

- RMSNorm: ``mean(x*x, -1)`` = ``linear(x*x, ones(1, d) / d)`` (a float matmul XNNPACK takes);
- RoPE: ``rotate_half(x)`` = ``linear(x, R)`` with a constant signed permutation ``R`` (hd x hd).

The constants are plain tensors used through ``F.linear`` (not ``nn.Linear``), so torchao's
quantization never touches them and they stay float.

Two graph rewrites of the exported program (in place, before lowering) remove what still split
every layer into several XNNPACK partitions (each one costs a backend pass pipeline at export
time and a delegate call at run time):

- ``inferred_dim_views``: ``view(1, seqlen, heads, head_dim)`` with a symbolic ``seqlen`` is
  refused by XNNPACK's view config; the same view with ``-1`` in that place is taken;
- ExecuTorch's ``RemoveRedundantTransposes`` (the canonical pass of ``export_llama``) cancels the
  transpose pairs between the attention, the custom KV cache and the custom SDPA, which otherwise
  copy the whole cache twice per layer and call.

With both, a layer is one partition (from after its SDPA to the next layer's RoPE).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearMeanRMSNorm(nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(weight.detach(), requires_grad=False)
        self.register_buffer("mean_row", torch.full((1, weight.shape[0]), 1.0 / weight.shape[0]), persistent=False)

    def forward(self, x):
        ms = F.linear(x * x, self.mean_row)
        return x * torch.rsqrt(ms + self.eps) * self.weight


def rotate_half_matrix(head_dim: int) -> torch.Tensor:
    """``R`` with ``F.linear(x, R) == cat(-x[..., h:], x[..., :h])``."""
    h = head_dim // 2
    r = torch.zeros(head_dim, head_dim)
    idx = torch.arange(h)
    r[idx, idx + h] = -1.0
    r[idx + h, idx] = 1.0
    return r


class MatmulRope(nn.Module):
    """``hf_apply_rotary_emb`` (full rotary dim) with rotate_half as a constant matmul."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.register_buffer("rot", rotate_half_matrix(head_dim), persistent=False)

    def forward(self, q, k, cos, sin):
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (T, 1, hd) against (B, T, heads, hd)
        return q * cos + F.linear(q, self.rot) * sin, k * cos + F.linear(k, self.rot) * sin


_VIEWS = ("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default")


def inferred_dim_views(graph_module) -> int:
    """Rewrite reshapes whose target shape has exactly one symbolic size to ``-1`` there (in place).

    The element count is unchanged and every other size is a constant, so ``-1`` names the same
    size. Returns the number of rewritten nodes."""
    n = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or str(node.target) not in _VIEWS:
            continue
        shape = list(node.args[1])
        symbolic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
        if len(symbolic) == 1 and -1 not in shape:
            shape[symbolic[0]] = -1
            node.args = (node.args[0], shape, *node.args[2:])
            n += 1
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return n


# pure ops that may be computed once when two nodes apply them to the same inputs (no custom op with side
# effects, such as the KV cache update, is ever merged). Not the torchao activation-quantization ops: a
# quantized input shared by several linears splits XNNPACK's partitions (4 -> 8 on the tiny test model).
_MERGEABLE = (*_VIEWS, "aten.linear.default")


def merge_duplicates(graph_module) -> int:
    """Merge call nodes of a pure op in ``_MERGEABLE`` with identical inputs (in place); returns how many.

    Attention's q/k/v projections and the MLP's gate/up projections read the same input, so the int4
    offset linears' group sums repeat (exporters/llm/offset_int4.py). Computing them once is a
    common-subexpression elimination restricted to these ops."""
    seen, n = {}, 0
    for node in list(graph_module.graph.nodes):
        if node.op != "call_function" or str(node.target) not in _MERGEABLE:
            continue
        key = (str(node.target), repr(node.args), repr(sorted(node.kwargs.items())))
        first = seen.setdefault(key, node)
        if first is not node:
            node.replace_all_uses_with(first)
            graph_module.graph.erase_node(node)
            n += 1
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return n


def one_partition_per_layer(exported_program) -> dict:
    """Apply the two rewrites above to ``exported_program`` in place; returns what they changed."""
    from executorch.extension.llm.export.export_passes import RemoveRedundantTransposes

    gm = exported_program.graph_module
    before = sum(1 for n in gm.graph.nodes if str(n.target) == "aten.transpose.int")
    RemoveRedundantTransposes()(gm)
    after = sum(1 for n in gm.graph.nodes if str(n.target) == "aten.transpose.int")
    views = inferred_dim_views(gm)
    return {"views_to_inferred_dim": views, "transposes_removed": before - after, "merged": merge_duplicates(gm)}


def make_delegable(model, head_dim: int):
    """Swap ExecuTorch Llama's RMSNorm modules and RoPE function in place; returns the model."""
    from executorch.examples.models.llama.norm import RMSNorm

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is RMSNorm and not child.add_unit_offset:
                setattr(parent, name, LinearMeanRMSNorm(child.weight, child.eps))
    model.rope.apply_rotary_emb = MatmulRope(head_dim)
    return model
