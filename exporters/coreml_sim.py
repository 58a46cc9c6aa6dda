"""PyTorch-side simulation of Core ML compression and fp16 compute (Core ML cannot run on Linux).

    python -c "from exporters.coreml_sim import palettize; import torch; print(palettize(torch.randn(8, 8), 2))"

Applies to a copy of the model exactly what a Core ML recipe asks coremltools
to do to the converted program: every ``nn.Linear`` / ``nn.Embedding`` weight
with at least ``weight_threshold`` elements goes through the handler of the
recipe's compression config type (``SIMULATORS``):

- ``CoreMLInt8Linear``: symmetric int8, one scale per output channel;
- ``CoreMLPalettize``: a per-tensor look-up table of 2**nbits k-means centroids;
- ``CoreMLInt4Block``: symmetric int4 with one scale per ``block_size`` inputs;

then, for ``precision="fp16"``, weights and the inputs/outputs of every weighted layer are
rounded to float16 (the arithmetic between them stays float32: a close, dtype-safe emulation).
"""

from __future__ import annotations

import copy

from .config import HandlerTable
from .recipes import CoreMLInt4Block, CoreMLInt8Linear, CoreMLPalettize

SIMULATORS = HandlerTable("Core ML compression config (simulation)")


def int8_per_channel(w):
    import torch

    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def int4_per_block(w, block: int):
    import torch

    out_f, in_f = w.shape
    pad = (-in_f) % block
    wp = torch.nn.functional.pad(w, (0, pad)).view(out_f, -1, block)
    scale = wp.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 7.0
    q = torch.clamp(torch.round(wp / scale), -7, 7) * scale
    return q.view(out_f, -1)[:, :in_f]


def palettize(w, nbits: int, iters: int = 25):
    """1-D k-means (quantile init, Lloyd steps) over the whole tensor; returns the centroid per weight."""
    import torch

    flat = w.reshape(-1).double()
    k = min(2**nbits, flat.numel())
    centroids = torch.quantile(flat, torch.linspace(0, 1, k, dtype=torch.float64))
    for _ in range(iters):
        idx = (flat[:, None] - centroids[None]).abs().argmin(dim=1)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, idx, flat)
        counts = torch.bincount(idx, minlength=k).double()
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
    idx = (flat[:, None] - centroids[None]).abs().argmin(dim=1)
    return centroids[idx].view_as(w).to(w.dtype)


@SIMULATORS.register(CoreMLInt8Linear)
def _int8(config, w):
    return int8_per_channel(w)


@SIMULATORS.register(CoreMLPalettize)
def _palettize(config, w):
    return palettize(w, config.nbits)


@SIMULATORS.register(CoreMLInt4Block)
def _int4_block(config, w):
    return int4_per_block(w, config.block_size)


def simulate(model, recipe):
    """A compressed, (fp16-)cast copy of ``model`` that mirrors the Core ML recipe; returns float32 logits."""
    import torch

    sim = copy.deepcopy(model).eval()
    if recipe.compression is not None:
        compress = SIMULATORS.handler(recipe.compression)
        seen = set()
        with torch.no_grad():
            for mod in sim.modules():
                if isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)):
                    w = mod.weight
                    if id(w) in seen or w.numel() < recipe.weight_threshold:
                        continue
                    seen.add(id(w))
                    w.copy_(compress(recipe.compression, w.data))
    if recipe.precision == "fp16":
        round_fp16(sim)
    return sim


def round_fp16(model) -> None:
    """Emulate float16 compute in place: fp16 weights, fp16 inputs/outputs of every weighted layer."""
    import torch

    def pre(mod, args):
        return tuple(a.half().float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    def post(mod, args, out):
        return out.half().float() if torch.is_tensor(out) and out.is_floating_point() else out

    with torch.no_grad():
        for mod in model.modules():
            w = getattr(mod, "weight", None)
            if isinstance(w, torch.nn.Parameter) and not list(mod.children()):
                w.copy_(w.half().float())
                mod.register_forward_pre_hook(pre)
                mod.register_forward_hook(post)
